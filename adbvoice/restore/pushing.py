"""Putting files on the phone so that no half file ever carries its final name.

Each file is pushed to a temporary name in its own folder (pipelined on one sync stream),
the phone hashes what it received, and only a file whose hash is the one read from this
computer's copy is renamed to its final name, by `mv -n`, which never replaces anything.
Before a temp name is pushed it is written to a journal on this computer; a run that dies
leaves its journal, and the next push to that phone removes exactly those temp files.

Temp names are `.adbvoice-<32 random hex digits>-<n>.part`: a fresh 128-bit token per run,
so no file of the user's can hold one by chance, and the sweep removes only paths that are
in a journal *and* have this form (a tampered journal cannot point it at a user's file).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from adbvoice import errors
from adbvoice.cancel import CancelToken
from adbvoice.events import Event
from adbvoice.phone import scripts
from adbvoice.phone.device import Phone
from adbvoice.phone.shell import RunningCommand
from adbvoice.phone.sync import PushItem

TEMP_NAME = re.compile(rb"\.adbvoice-[0-9a-f]{32}-[0-9]+\.part")
BATCH_FILES, BATCH_BYTES = 128, 8 << 20
"""Files per round of push → hash → rename: big enough that the phone's hash and rename
(two round trips) cost little per file, small enough that Ctrl-C or a lost phone leaves
little to push again (8 MB is about a second on Wi-Fi)."""
_BLOCK = 256 * 1024

# How adbd words a full disk and a place it may not write (file_sync_service.cpp appends strerror).
_FULL = ("No space left on device", "Disk quota exceeded")
_NOT_WRITABLE = ("Read-only file system", "Permission denied", "Operation not permitted")

PUSHED, TAKEN, DAMAGED, DIFFERS, FAILED, FULL, NOT_WRITABLE, NOT_PUSHED = (
    "pushed", "taken", "damaged", "differs", "failed", "full", "not writable", "not pushed",
)


def default_journal_dir() -> Path:
    """~/.local/state/adbvoice/pushes on Linux: journals of temp files being pushed."""
    return platformdirs.user_state_path("adbvoice") / "pushes"


@dataclass(frozen=True)
class Upload:
    """One file to put on the phone: this computer's copy, where it goes, the time it gets,
    and (for a restore) the SHA-256 its bytes must have."""

    source: Path
    final: bytes
    mtime: int
    size: int
    sha256: str | None = None


@dataclass
class Outcome:
    upload: Upload
    state: str = FAILED
    message: str = ""


class _Reader:
    """Reads the copy for the push, hashing it as it goes (SHA-256, and the phone's hash)."""

    def __init__(self, upload: Upload, tool: str, on_event: Callable[[Event], None]) -> None:
        self.upload = upload
        self._tool = tool.removesuffix("sum")
        self._on_event = on_event
        self.sha256 = ""
        self.digest = ""
        self.error = ""

    def chunks(self) -> Iterator[bytes]:
        sha256 = hashlib.sha256()
        other = sha256 if self._tool == "sha256" else hashlib.new(self._tool)  # one pass when they are one
        try:
            # O_NOFOLLOW: a link swapped in for an archived note is not that note.
            fd = os.open(self.upload.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            self.error = exc.strerror or str(exc)
            return
        with os.fdopen(fd, "rb") as handle:
            while True:
                try:
                    block = handle.read(_BLOCK)
                except OSError as exc:
                    self.error = exc.strerror or str(exc)
                    return
                if not block:
                    break
                sha256.update(block)
                if other is not sha256:
                    other.update(block)
                self._on_event(Event("bytes", bytes=len(block)))
                yield block
        self.sha256, self.digest = sha256.hexdigest(), other.hexdigest()


@dataclass
class _Answers:
    said: dict[int, str] = field(default_factory=dict)  # index → "" (OKAY) or the FAIL text

    def pushed(self, index: int) -> None:
        self.said[index] = ""

    def refused(self, index: int, message: str) -> None:
        self.said[index] = message


class Journal:
    """The temp names one run pushes to one phone, on this computer's disk before each push,
    held under a lock while the run lives; what a dead run left is swept by the next."""

    def __init__(self, folder: Path, serial: str) -> None:
        # The serial comes from the phone: as hex it cannot be read as a path.
        self.folder = folder / serial.encode("utf-8", "surrogateescape").hex()
        self.token = secrets.token_hex(16)
        self._fd = -1

    def open(self) -> None:
        _private_folder(self.folder)
        self._fd = os.open(self.folder / f"{self.token}.paths",
                           os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def temp_path(self, final: bytes, index: int) -> bytes:
        folder = final.rpartition(b"/")[0]
        return folder + b"/.adbvoice-%s-%d.part" % (self.token.encode(), index)

    def add(self, temps: Sequence[bytes]) -> None:
        os.write(self._fd, b"".join(t + b"\0" for t in temps))
        os.fsync(self._fd)

    def close(self, *, clean: bool) -> None:
        """Forget the journal when every temp file it names is gone; else leave it to the sweep."""
        if self._fd < 0:
            return
        if clean:
            os.unlink(self.folder / f"{self.token}.paths")
        os.close(self._fd)
        self._fd = -1

    def sweep_leftovers(self, phone: Phone, *, forget: bool = False) -> int:
        """Remove the temp files of every earlier run on this phone that is no longer alive;
        with `forget`, their journals too. A run sweeps when it starts and, if it found any,
        again when it ends, forgetting them then: a killed run's last pushes may still be
        on their way into the phone (adbd works through what it had received) after the
        first sweep."""
        swept = 0
        if not self.folder.is_dir():
            return 0
        for entry in sorted(self.folder.iterdir()):
            if entry.name == f"{self.token}.paths" or not entry.name.endswith(".paths"):
                continue
            try:
                fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a run still pushing holds it
                with os.fdopen(os.dup(fd), "rb") as handle:
                    paths = [p for p in handle.read().split(b"\0") if TEMP_NAME.fullmatch(p.rpartition(b"/")[2])]
                for start in range(0, len(paths), BATCH_FILES):
                    phone.sweep(paths[start : start + BATCH_FILES])
                swept += len(paths)
                if forget:
                    entry.unlink()
            finally:
                os.close(fd)
        return swept


def _private_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.ArchiveNotWritableError(f"cannot create {folder}: {exc.strerror}") from exc
    if folder.is_symlink() or folder.stat().st_uid != os.getuid():
        raise errors.ArchiveNotWritableError(f"{folder} is not a private folder of this user: not using it")


def push_journaled(
    phone: Phone,
    uploads: Sequence[Upload],
    tool: str,
    journal: Journal,
    on_event: Callable[[Event], None],
    cancel: CancelToken,
    *,
    swept: int,
) -> list[Outcome]:
    """push_verified with this run's journal open: forgotten when the run ends clean, left
    for the next run's sweep when it does not. `swept` (what the start-of-run sweep found)
    asks for a sweep at the end too (see Journal.sweep_leftovers)."""
    journal.open()
    clean = False
    try:
        outcomes = push_verified(phone, uploads, tool, journal, on_event, cancel)
        clean = True
    finally:
        journal.close(clean=clean)
    if swept:
        journal.sweep_leftovers(phone, forget=True)
    return outcomes


def push_verified(
    phone: Phone,
    uploads: Sequence[Upload],
    tool: str,
    journal: Journal,
    on_event: Callable[[Event], None],
    cancel: CancelToken,
) -> list[Outcome]:
    """Push every upload, a batch at a time: temp name → the phone's hash → final name.

    The batches overlap, so that the link never waits for the phone's checks: while one batch
    is pushed, the phone hashes the one before and renames the one before that. Stops after
    the batch in which the phone said it is full (the rest are NOT_PUSHED)."""
    outcomes: list[Outcome] = []
    hashing: _Batch | None = None  # pushed; the phone hashes it
    renaming: _Batch | None = None  # hashed; the phone renames it
    first = 0
    for batch in _batches(uploads):
        cancel.check()
        pushed = _Batch(phone, batch, first, tool, journal, on_event)
        first += len(batch)
        pushed.push()
        if renaming is not None:
            outcomes += renaming.finish()
        renaming, hashing = hashing, pushed
        if renaming is not None:
            renaming.start_renaming()
        if pushed.full:
            break
    for batch in (renaming, hashing):
        if batch is not None:
            if batch is hashing:
                batch.start_renaming()
            outcomes += batch.finish()
    return outcomes + [Outcome(u, NOT_PUSHED, "the phone is full") for u in uploads[len(outcomes):]]


def _batches(uploads: Sequence[Upload]) -> Iterator[Sequence[Upload]]:
    start = 0
    while start < len(uploads):
        end, size = start, 0
        while end < len(uploads) and end - start < BATCH_FILES and (end == start or size < BATCH_BYTES):
            size += uploads[end].size
            end += 1
        yield uploads[start:end]
        start = end


class _Batch:
    """One batch's way: push() to temp names, start_renaming() once the phone's hashes are
    in (the renames run on the phone meanwhile), finish() to read how each ended."""

    def __init__(
        self, phone: Phone, uploads: Sequence[Upload], first: int, tool: str, journal: Journal,
        on_event: Callable[[Event], None],
    ) -> None:
        self.phone, self.uploads, self.tool, self.on_event = phone, uploads, tool, on_event
        self.temps = [journal.temp_path(u.final, first + i) for i, u in enumerate(uploads)]
        self.outcomes = [Outcome(u) for u in uploads]
        self._readers = [_Reader(u, tool, on_event) for u in uploads]
        self._journal = journal
        self._hashed: list[int] = []
        self._hashes: scripts.PhoneHashes | None = None
        self._matched: list[int] = []
        self._renames: RunningCommand | None = None

    @property
    def full(self) -> bool:
        return any(o.state == FULL for o in self.outcomes)

    def push(self) -> None:
        self._journal.add(self.temps)
        answers = _Answers()
        self.phone.push_many([PushItem(t, 0o644, r.upload.mtime, r.chunks) for t, r in zip(self.temps, self._readers)],
                             answers)
        for i, reader in enumerate(self._readers):
            said = answers.said.get(i, "no answer")
            if said:
                self.outcomes[i].state, self.outcomes[i].message = _refusal(said), said
            elif reader.error or (reader.upload.sha256 and reader.sha256 != reader.upload.sha256):
                self.outcomes[i].state = DAMAGED
                self.outcomes[i].message = reader.error or "its bytes are not the ones archived"
            else:
                self._hashed.append(i)
        if self._hashed:
            self._hashes = self.phone.hash_files([self.temps[i] for i in self._hashed], self.tool)

    def start_renaming(self) -> None:
        if self._hashes is not None:
            try:
                for n, i in enumerate(self._hashed):
                    if self._hashes.get(n) == self._readers[i].digest:
                        self._matched.append(i)
                    else:
                        self.outcomes[i].state = DIFFERS
                        self.outcomes[i].message = "the phone's hash of the pushed file differs"
            finally:
                self._hashes.close()
        if self._matched:
            self._renames = self.phone.start_finishing([(self.temps[i], self.uploads[i].final) for i in self._matched])

    def finish(self) -> list[Outcome]:
        if self._renames is not None:
            letters = scripts.finish_outcomes(self._renames.wait().stdout, len(self._matched))
            for i, letter in zip(self._matched, letters):
                self.outcomes[i].state, self.outcomes[i].message = _FINISHED[letter]
                if letter == scripts.RENAMED:
                    self.on_event(Event("note", self.uploads[i].final.decode("utf-8", "replace")))
        # Every temp file that did not take its name goes, refused pushes' too: adbd removes a
        # half file only after it has sent the FAIL (handle_send_file), so one may still be there.
        self.phone.sweep([self.temps[i] for i, o in enumerate(self.outcomes) if o.state != PUSHED])
        return self.outcomes


_FINISHED = {
    scripts.RENAMED: (PUSHED, ""),
    scripts.NAME_TAKEN: (TAKEN, "a file took its name during the push; left alone"),
    scripts.TEMP_GONE: (FAILED, "the pushed file vanished before it could be renamed"),
    scripts.RENAME_FAILED: (FAILED, "the phone could not rename the pushed file"),
}


def _refusal(message: str) -> str:
    if any(text in message for text in _FULL):
        return FULL
    if any(text in message for text in _NOT_WRITABLE):
        return NOT_WRITABLE
    return FAILED


def stop_error(outcomes: Sequence[Outcome], device: str) -> errors.AdbVoiceError | None:
    """The error a run ends with when the phone was full or a folder not writable."""
    full = [o for o in outcomes if o.state == FULL]
    if full:
        where = full[0].upload.final.rpartition(b"/")[0].decode("utf-8", "replace")
        return errors.PhoneFullError(
            f"{device} is full ({full[0].message}, writing to {where}): free some space and run again; "
            "every file put back so far is whole, and the next run puts back the rest"
        )
    locked = [o for o in outcomes if o.state == NOT_WRITABLE]
    if locked:
        where = locked[0].upload.final.rpartition(b"/")[0].decode("utf-8", "replace")
        return errors.PhoneNotWritableError(
            f"{device} does not let adbvoice write to {where} ({locked[0].message}): "
            f"{len(locked):,} files not put back"
        )
    return None

