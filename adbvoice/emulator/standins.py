"""Stand-ins for Android's `am` and `content` and its media scanner, in the emulated shell.

A real phone answers these through its framework (ActivityManager, MediaProvider), which the
emulated phone does not have. These stand-ins answer the calls adbvoice makes the way
Android prints its answers, and record every call so a test can see what was asked:

- `am broadcast -a android.intent.action.MEDIA_SCANNER_SCAN_FILE -d file:///storage/…`:
  the media scanner indexes that file (if it is there and audio-named) into the media store;
- `content query --uri content://media/external/audio/media --projection _id --where
  "_data='/storage/…'"`: `Row: 0 _id=N`, or `No result found.`;
- `am start -a android.intent.action.SEND -t TYPE -p PACKAGE --eu android.intent.extra.STREAM
  URI …`: `Starting: Intent { … }`, or the error of an intent nothing resolves (a package
  that is not installed: WhatsApp is, unless a test says otherwise).

This file is also the program the phone runs: the shell's `am` and `content` are two-line
scripts that run it with the host's Python (the sandbox sees /usr), so it imports nothing
but the standard library. State lives in RECORDS inside the phone (a folder of the phone's
state on the host).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.parse
from pathlib import Path

RECORDS = "/data/standins"
_PROGRAM = "/system/lib/standins.py"
_AUDIO = (".opus", ".ogg", ".oga", ".m4a", ".mp3", ".aac", ".amr", ".wav", ".3gp", ".flac")
_AUDIO_MEDIA = "content://media/external/audio/media"
_SCAN = "android.intent.action.MEDIA_SCANNER_SCAN_FILE"


def install(system_dir: str) -> None:
    """Put `am`, `content` and this program into the phone's /system."""
    os.makedirs(os.path.join(system_dir, "lib"), exist_ok=True)
    shutil.copyfile(__file__, os.path.join(system_dir, "lib", "standins.py"))
    for command in ("am", "content"):
        script = os.path.join(system_dir, "bin", command)
        with open(script, "w") as f:
            f.write(f'#!/system/bin/sh\nexec /usr/bin/python3 -I {_PROGRAM} {command} "$@"\n')
        os.chmod(script, 0o755)


class Standins:
    """The host's view of the stand-ins' state: what was called, what the media store holds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "packages").exists():
            self.set_packages(["com.whatsapp"])

    def set_packages(self, packages: list[str]) -> None:
        (self.folder / "packages").write_text("".join(p + "\n" for p in packages))

    def calls(self) -> list[list[str]]:
        """Every call, as its argv (the command first), in order."""
        return _read_calls(self.folder / "calls")

    def media(self) -> dict[str, int]:
        """Media store: `_data` path → `_id`."""
        return _read_media(self.folder / "media")


def _read_calls(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    calls, fields = [], path.read_bytes().split(b"\0")
    at = 0
    while at < len(fields) - 1:
        count = int(fields[at])
        calls.append([f.decode("utf-8", "surrogateescape") for f in fields[at + 1 : at + 1 + count]])
        at += 1 + count
    return calls


def _read_media(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    rows = [line.split("\t", 1) for line in path.read_text().splitlines() if line]
    return {data: int(row_id) for row_id, data in rows}


# --- the program the phone runs ---------------------------------------------------------------


def _record(argv: list[str]) -> None:
    with open(os.path.join(RECORDS, "calls"), "ab") as f:
        f.write(b"%d\0" % len(argv) + b"".join(os.fsencode(a) + b"\0" for a in argv))


def _options(args: list[str]) -> dict[str, str]:
    """`-a X -d Y --eu K V …` → {"-a": X, "-d": Y, "K": V}; flags alone map to ""."""
    found, at = {}, 0
    while at < len(args):
        arg = args[at]
        if arg in ("--eu", "--es", "--ei"):
            found[args[at + 1]] = args[at + 2]
            at += 3
        elif arg.startswith("-") and at + 1 < len(args) and not args[at + 1].startswith("-"):
            found[arg] = args[at + 1]
            at += 2
        else:
            found[arg] = ""
            at += 1
    return found


def _intent(options: dict[str, str]) -> str:
    parts = [f"act={options.get('-a', '')}"]
    if "-d" in options:
        parts.append(f"dat={options['-d']}")
    if "-t" in options:
        parts.append(f"typ={options['-t']}")
    if "-p" in options:
        parts.append(f"pkg={options['-p']}")
    if any(not key.startswith("-") for key in options):
        parts.append("(has extras)")
    return "Intent { " + " ".join(parts) + " }"


def _am(args: list[str]) -> int:
    verb, options = (args[0] if args else ""), _options(args[1:])
    if verb == "broadcast":
        print(f"Broadcasting: {_intent(options)}")
        uri = options.get("-d", "")
        if options.get("-a") == _SCAN and uri.startswith("file://"):
            _scan(urllib.parse.unquote(uri.removeprefix("file://")))
        print("Broadcast completed: result=0")
        return 0
    if verb == "start":
        print(f"Starting: {_intent(options)}")
        with open(os.path.join(RECORDS, "packages")) as f:
            installed = f.read().split()
        if options.get("-p") not in installed:
            print(f"Error: Activity not started, unable to resolve {_intent(options)}")
        return 0
    print(f"Error: unknown command '{verb}'", file=sys.stderr)
    return 1


def _scan(path: str) -> None:
    real = os.path.realpath(path)
    if not (os.path.isfile(real) and real.lower().endswith(_AUDIO)):
        return
    media = _read_media(Path(RECORDS, "media"))
    if real not in media:
        with open(os.path.join(RECORDS, "media"), "a") as f:
            f.write(f"{len(media) + 1}\t{real}\n")


def _content(args: list[str]) -> int:
    verb, options = (args[0] if args else ""), _options(args[1:])
    if verb != "query":
        print(f"Error: unknown command '{verb}'", file=sys.stderr)
        return 1
    where = options.get("--where", "")
    found = None
    if options.get("--uri") == _AUDIO_MEDIA and where.startswith("_data='") and where.endswith("'"):
        found = _read_media(Path(RECORDS, "media")).get(where[7:-1].replace("''", "'"))
    print(f"Row: 0 _id={found}" if found is not None else "No result found.")
    return 0


if __name__ == "__main__":
    _record(sys.argv[1:])
    sys.exit(_am(sys.argv[2:]) if sys.argv[1] == "am" else _content(sys.argv[2:]))
