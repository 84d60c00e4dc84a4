"""Shell commands we run on the phone, and the parsing of what they print.

They run under Android's mksh with toybox, so they stick to what toybox offers on
Android 11+: `find -printf` (%M mode string, %s size, %T@ mtime, %P path below the start
point), `sha1sum` and `sha256sum`. Output is NUL-separated where names are, because a
phone's file names may hold newlines or bytes that are not UTF-8.
"""

from __future__ import annotations

import hashlib
import re
import stat as statmod
import urllib.parse
from collections.abc import Sequence

from adbvoice.phone.shell import OUTPUT_MAX, RunningCommand
from adbvoice.phone.sync import RemoteEntry, RemoteStat

END_MARK = b"E"
LISTING_MAX = 128 << 20
"""The most a listing may print. A WhatsApp note's record is about 75 bytes (`-rw-rw----
31235 1714567890.123456789 202418/PTT-20240501-WA0001.opus`), so a million notes print
about 75 MB: 128 MiB leaves room for long names, and bounds what a phone can make us hold
(twice, while it is parsed)."""
_MODE_TYPES = {ord("-"): statmod.S_IFREG, ord("l"): statmod.S_IFLNK, ord("d"): statmod.S_IFDIR}


class UnexpectedOutput(Exception):
    """The phone's shell printed something our parser does not recognise."""


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def listing_script(roots: Sequence[str], *, entries: bool = True) -> str:
    """One command that lists every root: `D<root>` for a folder, `L<root>` for a link we
    will not follow, then (unless entries=False) one record per non-folder below it, and
    `E` at the very end."""
    quoted = " ".join(shell_quote(r) for r in roots)
    find = "find \"$r\" -mindepth 1 ! -type d -printf '%M %s %T@ %P\\0'; " if entries else ""
    return (
        f"for r in {quoted}; do "
        "if [ -L \"$r\" ]; then printf 'L%s\\0' \"$r\"; "
        f"elif [ -d \"$r\" ]; then printf 'D%s\\0' \"$r\"; {find}fi; "
        "done; printf 'E\\0'"
    )


IDENTITY_PROPS = ("ro.serialno", "ro.product.model", "ro.build.version.release")


def identity_script() -> str:
    """`P<prop>=<value>` records: who the phone is, from Android's getprop."""
    return "; ".join(f"printf 'P{p}=%s\\0' \"$(getprop {p})\"" for p in IDENTITY_PROPS)


def split_identity(output: bytes) -> tuple[dict[str, str], bytes]:
    """The identity records at the start of `output`, and what follows them."""
    props: dict[str, str] = {}
    rest = output
    for _ in IDENTITY_PROPS:
        record, sep, rest = rest.partition(b"\0")
        if not sep or not record.startswith(b"P"):
            raise UnexpectedOutput("no identity in the phone's answer")
        key, _, value = record[1:].decode("utf-8", "replace").partition("=")
        props[key] = value.strip()
    return props, rest


def fingerprint_script(roots: Sequence[str]) -> str:
    """Who the phone is, its roots, and `H` + the SHA-256 of what listing_script would
    print: if that equals the fingerprint of the listing the last complete backup worked
    from, nothing on the phone changed, and a backup with nothing to do costs a few hundred
    bytes instead of a listing that grows with every note (600 KB for 10,000).

    One line per record, gathered in a variable and printed by one printf (with no final
    newline, which mksh would write on its own): adbd sends
    whatever the command has written when it reads, and every further piece costs a round
    trip. Run it over `exec:` (no exit packet to wait for), where stderr would mix in, so
    stderr is dropped. No record holds a newline: the roots are ours, and Android's
    property values hold none.
    """
    quoted = " ".join(shell_quote(r) for r in roots)
    identity = "; ".join(f"printf 'P{p}=%s\\n' \"$(getprop {p})\"" for p in IDENTITY_PROPS)
    markers = (
        f"for r in {quoted}; do if [ -L \"$r\" ]; then printf 'L%s\\n' \"$r\"; "
        "elif [ -d \"$r\" ]; then printf 'D%s\\n' \"$r\"; fi; done"
    )
    digest = f"printf 'H%s\\n' \"$({{ {listing_script(roots)}; }} | sha256sum)\""
    return f"out=$( {{ {identity}; {markers}; {digest}; }} 2>/dev/null ); printf '%s' \"$out\""


def listing_fingerprint(listing: bytes) -> str:
    return hashlib.sha256(listing).hexdigest()


def parse_fingerprint(output: bytes, roots: Sequence[str]) -> tuple[dict[str, str], dict[bytes, RemoteStat], str]:
    """(identity, lstat of each root, the listing's SHA-256) from fingerprint_script's output."""
    lines = output.split(b"\n")
    if not lines[-1].startswith(b"H") or not lines[-1].endswith(b"  -"):  # sha256sum's line comes last
        raise UnexpectedOutput("the fingerprint did not finish")
    identity = [line for line in lines if line[:1] == b"P"]
    markers = [line for line in lines if line[:1] in (b"D", b"L")]
    digests = [line[1 : 1 + SHA256_HEX] for line in lines if line[:1] == b"H"]
    if len(identity) != len(IDENTITY_PROPS) or len(digests) != 1 or not _is_hex(digests[0], SHA256_HEX):
        raise UnexpectedOutput("no identity or fingerprint in the phone's answer")
    props, _rest = split_identity(b"".join(line + b"\0" for line in identity))
    root_stats, _entries = parse_listing(b"".join(line + b"\0" for line in markers) + END_MARK + b"\0", roots)
    return props, root_stats, digests[0].decode()


def parse_listing(output: bytes, roots: Sequence[str]) -> tuple[dict[bytes, RemoteStat], list[RemoteEntry]]:
    """The same shape as SyncClient.walk: lstat of each root and the entries below them."""
    records = output.split(b"\0")
    if len(records) < 2 or records[-2] != END_MARK or records[-1] != b"":
        raise UnexpectedOutput("the listing did not finish")
    root_stats = {r.encode(): RemoteStat(0, 0, 0, exists=False) for r in roots}
    entries: list[RemoteEntry] = []
    current: bytes | None = None
    for record in records[:-2]:
        kind, rest = record[:1], record[1:]
        if kind in (b"D", b"L") and rest in root_stats:
            mode = statmod.S_IFDIR if kind == b"D" else statmod.S_IFLNK
            root_stats[rest] = RemoteStat(mode, 0, 0)
            current = rest if kind == b"D" else None
            continue
        fields = record.split(b" ", 3)
        if current is None or len(fields) != 4 or not fields[0]:
            raise UnexpectedOutput(f"unexpected listing record {record[:80]!r}")
        mode_text, size, mtime, relative = fields
        try:
            st = RemoteStat(_MODE_TYPES.get(mode_text[0], 0), int(size), int(mtime.split(b".")[0]))
        except ValueError as exc:
            raise UnexpectedOutput(f"unexpected listing record {record[:80]!r}") from exc
        entries.append(RemoteEntry(current + b"/" + relative, st))
    return root_stats, entries


HASH_COMMAND = "xargs -0 sha1sum"
"""SHA-1, not SHA-256: the phone's hash only tells whether the bytes we hold are the bytes
it holds, and the phone supplies both, so collision resistance buys nothing here, while
SHA-1 costs the phone a third of SHA-256's CPU where toybox computes it in software (as
Debian's toybox, the emulated phone's, does: 0.3 s against 0.9 s for 88 MB). Android's
toybox links BoringSSL, where both are fast. The catalog still names each note by SHA-256."""
SHA1_HEX = 40
SHA256_HEX = 64


def hash_stdin(paths: Sequence[bytes]) -> bytes:
    return b"\0".join(paths)


def hash_output_max(paths: Sequence[bytes], digest_hex: int) -> int:
    """What hashing `paths` may print: a line `<hex>  <path>` each, and a little more."""
    return sum(digest_hex + 3 + len(p) for p in paths) + OUTPUT_MAX


def delete_output_max(pairs: Sequence[tuple[bytes, str]]) -> int:
    """What the delete script may print: a two-byte record per note, and a little more."""
    return 2 * len(pairs) + OUTPUT_MAX


class PhoneHashes:
    """The hash of each file as the phone computes it (SHA-1 of each pulled file, read
    while files are copied; SHA-256 or MD5 for a prune).

    `sha1sum` prints `<hex>  <path>\\n` per file in the order given, and nothing (only
    stderr) for a file it cannot read. Lines are matched against the exact path expected,
    so a name holding a newline cannot shift the answers of the files after it.
    """

    def __init__(self, command: RunningCommand, paths: Sequence[bytes], digest_hex: int = SHA1_HEX) -> None:
        self._command = command
        self._paths = paths
        self._digest_hex = digest_hex
        self._cursor = 0  # next unparsed byte of stdout
        self._next = 0  # next path index to resolve
        self._hashes: dict[int, str | None] = {}

    def get(self, index: int) -> str | None:
        """The phone's hash of paths[index]; None if the phone could not hash it."""
        while index >= self._next:
            if not self._resolve_next():
                self._command.read_more()
        return self._hashes[index]

    def settled(self, index: int) -> bool:
        """Whether get(index) can answer from what has already arrived, without waiting
        (after a lost connection, nothing more will)."""
        self._command.read_arrived()
        while index >= self._next and self._resolve_next():
            pass
        return index < self._next

    def _resolve_next(self) -> bool:
        path = self._paths[self._next]
        out = self._command.stdout
        start = self._cursor
        expected_tail = b"  " + path + b"\n"
        digest_end = start + self._digest_hex
        available = out[digest_end : digest_end + len(expected_tail)]
        complete = len(available) == len(expected_tail)
        if complete and available == expected_tail and _is_hex(out[start:digest_end], self._digest_hex):
            self._hashes[self._next] = out[start:digest_end].decode()
            self._cursor = digest_end + len(expected_tail)
        elif complete or self._command.finished or not expected_tail.startswith(bytes(available)):
            self._hashes[self._next] = None
        else:
            return False
        self._next += 1
        return True

    def close(self) -> None:
        self._command.close()


def _is_hex(text: bytes | bytearray, length: int) -> bool:
    return len(text) == length and all(c in b"0123456789abcdef" for c in text)


# --- pruning: the phone's own hash of a note, and deleting it -------------------------------

PRUNE_HASHES = {"sha256sum": SHA256_HEX, "md5sum": 32}
"""What a prune compares, best first: toybox has sha256sum since 0.7.2 (July 2016, in builds
with the libcrypto Android uses), so from Android 8 on; md5sum, older in toybox, is the
fallback for a phone without it. The archive's copy is hashed the same way."""


def hash_tool_script() -> str:
    """Prints the first of PRUNE_HASHES the phone has (`command -v`), or nothing."""
    tools = " ".join(PRUNE_HASHES)
    return f"for t in {tools}; do if command -v $t >/dev/null 2>&1; then printf '%s' $t; break; fi; done"


def hash_command(tool: str) -> str:
    return f"xargs -0 {tool}"


DELETE_SCRIPT = (
    "out=; set --; "
    "while IFS= read -r -d '' p && IFS= read -r -d '' want; do "
    "if [ -L \"$p\" ] || [ ! -f \"$p\" ]; then out=${{out}}S; continue; fi; "
    "got=$({tool} < \"$p\" 2>/dev/null); "
    "if [ \"${{got%% *}}\" = \"$want\" ]; then out=${{out}}M; set -- \"$@\" \"$p\"; else out=${{out}}C; fi; "
    "done; "
    "[ $# -eq 0 ] || rm -f -- \"$@\" 2>/dev/null; "
    "while [ -n \"$out\" ]; do c=${{out%\"${{out#?}}\"}}; out=${{out#?}}; "
    "if [ $c = M ]; then if [ -e \"$1\" ] || [ -L \"$1\" ]; then c=F; else c=D; fi; shift; fi; "
    "print -n \"$c\\\\0\"; done"
)
"""Deletes the notes given on stdin, each only if it is still a regular file (never a link:
-L first, and rm removes a name, never follows one) whose hash, taken by the phone just
before the rm, is the one given. The notes that pass go to one `rm` (a process per note is
what a phone's time goes on: one hash each is the price of the check, a second process for
the rm is not); one record per note, in order: D deleted, C its bytes changed, S not a
regular file (any more), F the rm failed. Paths and hashes come NUL-separated on stdin,
never on the command line, so no name can be read as a word or an option (`--` too);
mksh's `read -d ''` splits on NUL, and `print` is its builtin (printf is not)."""

DELETED, CHANGED, NOT_A_FILE, DELETE_FAILED = "D", "C", "S", "F"


def delete_script(tool: str) -> str:
    return DELETE_SCRIPT.format(tool=tool)


def delete_stdin(pairs: Sequence[tuple[bytes, str]]) -> bytes:
    """(path, hex digest) pairs as the delete script reads them."""
    return b"".join(path + b"\0" + digest.encode() + b"\0" for path, digest in pairs)


def delete_outcomes(output: bytes | bytearray) -> list[str]:
    """The records the delete script has printed so far, in order (a cut-off run's last
    record may be missing: that note's deletion is unknown)."""
    records = bytes(output).split(b"\0")[:-1]
    outcomes = [r.decode("ascii", "replace") for r in records]
    unknown = [o for o in outcomes if o not in (DELETED, CHANGED, NOT_A_FILE, DELETE_FAILED)]
    if unknown:
        raise UnexpectedOutput(f"unexpected delete record {unknown[0][:20]!r}")
    return outcomes


def find_name_script(roots: Sequence[str], name: str, timeout_s: int, skip: Sequence[str] = ()) -> str:
    """`find` of one exact file name below `roots` (not descending into `skip`),
    NUL-separated, bounded by toybox's `timeout` (exit 124 when it ran out); unreadable
    folders are not an error."""
    quoted = " ".join(shell_quote(r) for r in roots)
    pruned = "".join(f"-path {shell_quote(path)} -prune -o " for path in skip)
    return (f"timeout {timeout_s} find {quoted} {pruned}-name {shell_quote(name)} -print0 2>/dev/null; "
            "echo -n \"E$?\"")


def parse_found(output: bytes, exit_code: int | None) -> list[bytes] | None:
    """find_name_script's paths; None if find was cut off by its timeout."""
    body, _, status = output.rpartition(b"E")
    if status == b"124" or not status.isdigit():
        return None
    return [path for path in body.split(b"\0") if path]


# --- putting files on the phone: a pushed temp file takes its final name, or is swept -------

FINISH_SCRIPT = (
    "case $(whence -v rename 2>/dev/null) in *builtin*) mv=rename;; *) mv='mv -n';; esac; out=; "
    "while IFS= read -r -d '' t && IFS= read -r -d '' f; do "
    "if [ -e \"$f\" ] || [ -L \"$f\" ]; then rm -f -- \"$t\"; out=${out}X; "
    "elif [ -L \"$t\" ] || [ ! -f \"$t\" ]; then out=${out}S; "
    "elif $mv -- \"$t\" \"$f\" 2>/dev/null && [ ! -e \"$t\" ]; then out=${out}R; "
    "else rm -f -- \"$t\"; if [ -e \"$f\" ]; then out=${out}X; else out=${out}F; fi; fi; "
    "done; print -n \"$out\""
)
"""Gives each pushed temp file its final name, only where no name stands: the name is looked
at right before the rename, as toybox's `mv -n` does (stat, then rename(2); nothing in a
phone's userland renames without replacing in one call). mksh's `rename` builtin (rename(2),
no process) does it where the shell has one, as Debian's mksh does; else toybox's `mv -n`, a
process per note, which was most of a restore's time on the emulated phone. A rename keeps the time the push gave the
file. Pairs (temp, final) come NUL-separated on stdin; one letter per pair, in order: R
renamed, X the final name was taken (the temp file is removed), S the temp file is gone, F
the rename failed (removed too)."""

RENAMED, NAME_TAKEN, TEMP_GONE, RENAME_FAILED = "R", "X", "S", "F"

SWEEP_SCRIPT = (
    "set --; "
    "while IFS= read -r -d '' p; do if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then set -- \"$@\" \"$p\"; fi; done; "
    "[ $# -eq 0 ] || rm -f -- \"$@\" 2>/dev/null; print -n E"
)
"""Removes the regular files named on stdin (NUL-separated), never following a link: the
temp files a cut-off push left behind."""


def finish_stdin(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    return b"".join(temp + b"\0" + final + b"\0" for temp, final in pairs)


def finish_outcomes(output: bytes, expected: int) -> list[str]:
    outcomes = list(output.decode("ascii", "replace"))
    if len(outcomes) != expected or set(outcomes) - {RENAMED, NAME_TAKEN, TEMP_GONE, RENAME_FAILED}:
        raise UnexpectedOutput(f"the rename script answered {output[:40]!r} for {expected} files")
    return outcomes


# --- the media scanner and the share sheet (Android's `am` and `content`) ---------------------

SCAN_ACTION = "android.intent.action.MEDIA_SCANNER_SCAN_FILE"
AUDIO_MEDIA_URI = "content://media/external/audio/media"
WHATSAPP_PACKAGE = "com.whatsapp"
STORAGE = "/storage/emulated/0"
"""What /sdcard stands for: the media store names files by this path (its `_data` column)."""


def storage_path(path: bytes) -> str:
    """/sdcard/x as the media store knows it: /storage/emulated/0/x."""
    text = path.decode("utf-8", "surrogateescape")
    return STORAGE + text.removeprefix("/sdcard") if text.startswith("/sdcard/") else text


def scan_command(path: bytes) -> str:
    """Ask MediaProvider to index one file now. The broadcast is deprecated for apps since
    Android 10, but MediaProvider still acts on it, and it is the one a shell may send."""
    uri = "file://" + urllib.parse.quote(storage_path(path), safe="/")
    return f"am broadcast -a {SCAN_ACTION} -d {shell_quote(uri)}"


def media_id_command(path: bytes) -> str:
    where = "_data='" + storage_path(path).replace("'", "''") + "'"
    return f"content query --uri {AUDIO_MEDIA_URI} --projection _id --where {shell_quote(where)}"


def parse_media_id(output: bytes) -> int | None:
    """`Row: 0 _id=57` → 57; `No result found.` → None."""
    match = re.search(rb"^Row: 0 _id=(\d+)$", output, re.MULTILINE)
    return int(match[1]) if match else None


def share_command(media_id: int, mime: str, package: str = WHATSAPP_PACKAGE) -> str:
    """Android's share (ACTION_SEND) of the media store's entry, to WhatsApp, with the right
    to read it: apps refuse file:// URIs since Android 7 (FileUriExposedException)."""
    return (
        f"am start -a android.intent.action.SEND -t {shell_quote(mime)} -p {package} "
        f"--eu android.intent.extra.STREAM {AUDIO_MEDIA_URI}/{media_id} --grant-read-uri-permission"
    )


def share_failure(output: bytes) -> str | None:
    """What `am start` said went wrong (it exits 0 either way), or None."""
    for line in output.decode("utf-8", "replace").splitlines():
        if line.startswith(("Error", "Exception")):
            return line.strip()
    return None
