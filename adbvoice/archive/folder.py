"""The archive folder: write-once notes, private to their owner.

The order of writes is the invariant (restic's rule for write-once storage):
1. bytes go to a temp file in `.adbvoice/tmp/` on the same filesystem, hashed as they
   arrive (a small note is held in memory until step 2, see TempNote);
2. the temp file is complete, gets the phone's mtime (`store`) and is made durable;
3. it is linked to its final name — link(2) fails rather than replace an existing name;
4. the final folder (and every folder created for it) is made durable;
5. only then may the catalog refer to it.
Notes are published in groups (see backup/publish.py): step 2 for the whole group, step 3 per
note, step 4 once per folder for the whole group, step 5 in one transaction. How steps 2
and 4 are made durable (fsync per file and folder, or one syncfs) is durability.py's.
A crash anywhere leaves either nothing visible or a complete file; leftovers in tmp/ are
swept at the start of the next run. If a sync fails the temp file is discarded, never
retried: after a failed fsync the kernel may have dropped the dirty pages while reporting
success on a retry (the "fsyncgate" finding, PostgreSQL 2018).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from adbvoice import errors
from adbvoice.archive.layout import PRIVATE_DIR, with_suffix_number, written_by_adbvoice

FILE_MODE = 0o600
DIR_MODE = 0o700
HELD_BYTES = 1 << 20  # a note up to this size is received in memory (see TempNote)
WRITEBACK_BYTES = 4 << 20  # a note written as it arrives is sent on to the disk this often
# How long a run holding the lock may take unless it says more (a prune, a rebuild; a
# backup says how long it expects once it knows what it copies): far longer than any does.
LONGEST_RUN_S = 24 * 3600
# A holder this long past the end it expected is hung, not slow (clocks differ a little
# between the hosts of a shared disk).
STALE_AFTER_S = 15 * 60
_LOCK_LINE = re.compile(r"since (?P<since>\S+) until (?P<until>\S+)")
# Filesystems without hard links (FAT, exFAT, some network mounts) refuse link(2) with these.
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class FsyncFailed(Exception):
    """The disk did not confirm the write; the temp file was discarded."""


def disk_error(exc: OSError, what: str) -> errors.AdbVoiceError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return errors.DiskFullError(f"the archive's disk is full ({what}); nothing half-written was kept")
    return errors.ArchiveNotWritableError(f"cannot write the archive ({what}): {exc.strerror or exc}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_regular(path: Path) -> int:
    """A read descriptor on `path` if it is a regular file; OSError otherwise. Links are
    not followed (O_NOFOLLOW), and a FIFO planted at a note's name does not block the open
    (O_NONBLOCK) and is refused by fstat, so it cannot hang a run holding the lock."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    os.set_blocking(fd, True)
    return fd


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _not_ours(st: os.stat_result) -> bool:
    return st.st_uid != os.geteuid()


def _whose(st: os.stat_result) -> str:
    return f"user {st.st_uid}"


class TempNote:
    """A note being received: bytes counted, SHA-256 (its name in the catalog) and SHA-1
    (to compare with the phone's, phone/scripts.py's HASH_COMMAND) computed as they arrive.

    Up to HELD_BYTES it is held in memory and its temp file is written when it is sealed,
    on the publishing thread: creating files was the receive loop's costliest step. A
    bigger note goes to its temp file as it arrives, so memory stays flat in file size.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._on_disk = False
        self._written = 0  # bytes in the temp file
        self._written_back = 0  # of which the kernel was asked to start writing out
        self._held = bytearray()
        self._hash = hashlib.sha256()
        self._check = hashlib.sha1()
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._on_disk or self.size + len(data) > HELD_BYTES:
            self._write_out(data)
        else:
            self._held += data
        self._hash.update(data)
        self._check.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def sha1(self) -> str:
        return self._check.hexdigest()

    def held_bytes(self) -> bytes | None:
        """All its bytes while it is held in memory; None once it went to its temp file."""
        return None if self._on_disk else bytes(self._held)

    def store(self, mtime: int) -> None:
        """Put every byte in the temp file and give it the phone's mtime."""
        if not self._on_disk:
            self._write_out(b"")
        try:
            os.utime(self._fd, (mtime, mtime))
        except OSError:
            pass  # some filesystems keep no mtime; the catalog has it anyway

    def seal(self) -> None:
        """Make the stored file durable; FsyncFailed if the disk says no."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self.discard()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_error(exc, f"syncing {self.path.name}") from exc
            raise FsyncFailed(f"fsync failed: {exc.strerror}") from exc
        os.close(self._fd)
        self._fd = -1

    def close(self) -> None:
        """Close the stored file unsynced: a sync of the whole filesystem follows."""
        os.close(self._fd)
        self._fd = -1

    def _write_out(self, data: bytes) -> None:
        """Append `data` to the temp file, creating it (with what was held) if need be."""
        try:
            if not self._on_disk:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, FILE_MODE)
                self._on_disk = True
                held, self._held = self._held, bytearray()
                self._write_all(held)
            self._write_all(data)
        except OSError as exc:
            self.discard()
            raise disk_error(exc, f"writing {self.path.name}") from exc
        if self._written - self._written_back >= WRITEBACK_BYTES:
            self._start_writeback()

    def _write_all(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._written += len(data)

    def _start_writeback(self) -> None:
        """Have the kernel start writing what is new in the file, without waiting (Linux's
        POSIX_FADV_DONTNEED starts writeback of dirty pages; pages still being written
        stay cached): the fsync at the end then finds little left, 2 ms instead of 120 ms
        for 200 MB here. Only advice: errors are ignored."""
        try:
            os.posix_fadvise(self._fd, self._written_back, self._written - self._written_back, os.POSIX_FADV_DONTNEED)
        except (OSError, AttributeError):  # AttributeError: a system without posix_fadvise
            pass
        self._written_back = self._written

    def discard(self) -> None:
        self._held = bytearray()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._on_disk:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


class HeldLock:
    """The archive's lock, held: the line in the lock file says who holds it since when,
    and until when it expects to."""

    def __init__(self, fd: int, since: float) -> None:
        self._fd = fd
        self._since = since

    def expect(self, seconds: float) -> None:
        """The run expects to end within `seconds` from now (at most a year: a phone may list
        absurd sizes, and a date must stay a date)."""
        seconds = min(seconds, 365 * 86400)
        line = (f"adbvoice pid {os.getpid()} on {socket.gethostname()} since {_utc(self._since)} "
                f"until {_utc(time.time() + seconds)}\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, line, 0)


def _utc(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Published:
    relpath: PurePosixPath
    adopted: bool  # the bytes were already there under this name, from a cut-off run


def refuse_unusable(root: Path) -> None:
    """ArchiveNotWritableError, creating nothing, when `root` cannot be or become an archive
    folder: it, or a folder above it, is a file; or the nearest folder above it that
    exists cannot be written. So a backup can say so before it waits for the phone."""
    for path in (root, *root.parents):
        if not os.path.lexists(path):
            continue
        if not path.is_dir():
            raise errors.ArchiveNotWritableError(
                f"cannot use {root} as the archive: {path} is a file, not a folder"
            )
        if path != root and not os.access(path, os.W_OK | os.X_OK):
            raise errors.ArchiveNotWritableError(f"cannot create the archive {root}: {path} is not writable")
        return


def _not_an_archive(root: Path) -> str:
    """Why `root` is no archive, in the words a first-time user needs."""
    try:
        empty = not os.path.lexists(root) or (root.is_dir() and not any(root.iterdir()))
    except OSError:
        empty = False
    if empty:
        return (f"{root} is not an adbvoice archive: nothing has been backed up there yet (back up a phone "
                "with `adbvoice backup`, or try adbvoice on a built-in phone with `adbvoice demo`)")
    if not root.is_dir():
        return f"{root} is a file, not an archive folder"
    return f"{root} is not an adbvoice archive (no {PRIVATE_DIR}/catalog.sqlite)"


class Archive:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.private = root / PRIVATE_DIR
        self.tmp = self.private / "tmp"
        self.catalog_path = self.private / "catalog.sqlite"
        self.lock_path = self.private / "lock"
        self._folders: set[Path] = set()  # dated folders known to exist: no mkdir(2) each note
        self._temp_names = itertools.count()
        self._unsynced: set[Path] = set()  # folders that gained an entry since unsynced_folders()
        self.notices: list[str] = []  # what check() found worth saying (folders others may read)

    @classmethod
    def open(cls, root: Path, *, create: bool) -> Archive:
        """The archive at `root`, created (0700) if asked; ArchiveNotWritableError otherwise."""
        root = root.expanduser().absolute()
        archive = cls(root)
        if not create:
            if not root.is_dir():  # nothing there yet, or a file: say which, before looking inside
                raise errors.NotAnArchiveError(_not_an_archive(root))
            archive.notices = archive.check()
            if not archive.catalog_path.exists():
                raise errors.NotAnArchiveError(_not_an_archive(root))
            return archive
        refuse_unusable(root)
        try:
            root.mkdir(mode=DIR_MODE, exist_ok=True, parents=True)
            archive.check()  # before anything is created or removed inside it
            for folder in (archive.private, archive.tmp):
                folder.mkdir(mode=DIR_MODE, exist_ok=True)
            archive.notices = archive.check()
            probe = archive.tmp / f"probe-{secrets.token_hex(4)}"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE))
            probe.unlink()
        except OSError as exc:
            raise disk_error(exc, str(root)) from exc
        return archive

    def check(self) -> list[str]:
        """Check what is found on disk before using it: the root and `.adbvoice/` are
        folders of this user that nobody else may write in, and `.adbvoice/`, `tmp/` and
        the state files in it are no links and are this user's (a link there once had the
        start-of-run sweep delete a user's documents). Raises ArchiveNotPrivateError or
        UnsafeStateFolderError; returns what to say about folders others may read."""
        notices = []
        for folder in (self.root, self.private):
            try:
                st = folder.lstat() if folder is self.private else folder.stat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            if folder is self.root and not stat.S_ISDIR(st.st_mode):
                return notices  # no folder at all: the caller says what it is
            if folder is self.private:
                self._check_state_entry(folder, st, stat.S_ISDIR)
            if _not_ours(st):
                raise errors.ArchiveNotPrivateError(
                    f"{folder} belongs to {_whose(st)}, not to you: use a folder of your own"
                )
            if st.st_mode & 0o022:
                raise errors.ArchiveNotPrivateError(
                    f"{folder} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
                    f"run `chmod 700 {folder}`, or use a folder of your own"
                )
            if st.st_mode & 0o044:
                notices.append(f"{folder} is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
                               f"`chmod 700 {folder}` keeps your voice notes private")
        for path, kind in ((self.tmp, stat.S_ISDIR), (self.lock_path, stat.S_ISREG), (self.catalog_path, stat.S_ISREG)):
            try:
                self._check_state_entry(path, path.lstat(), kind)
            except (FileNotFoundError, NotADirectoryError):
                pass
        return notices

    def _check_state_entry(self, path: Path, st: os.stat_result, kind: Callable[[int], bool]) -> None:
        if stat.S_ISLNK(st.st_mode) or not kind(st.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a " + (
                "folder" if kind is stat.S_ISDIR else "regular file")
            raise errors.UnsafeStateFolderError(
                f"{path} is {what}: adbvoice never follows links in {PRIVATE_DIR}/; check what put it "
                "there, then move it away"
            )
        if _not_ours(st):
            raise errors.UnsafeStateFolderError(
                f"{path} belongs to {_whose(st)}, not to you: check who else writes in this archive"
            )

    @contextmanager
    def lock(self, expected_s: float = LONGEST_RUN_S) -> Iterator[HeldLock]:
        """One writer per archive: flock on a dedicated file. The holder writes in it who it
        is and until when it expects to run (`HeldLock.expect` moves that on), so a second
        run can say who holds it, and tell a busy archive from one a hung run holds: the
        kernel drops the lock when its holder dies, so a lock outliving its own "until" is
        a process alive but stuck (StaleLockError, which --if-present does not silence)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise self._busy(os.pread(fd, 300, 0).decode("utf-8", "replace").strip()) from exc
            held = HeldLock(fd, time.time())
            held.expect(expected_s)
            yield held
        finally:
            os.close(fd)

    def _busy(self, line: str) -> errors.AdbVoiceError:
        holder = line.split(" since ")[0] if line else "another process"
        found = _LOCK_LINE.search(line)
        try:
            until = datetime.fromisoformat(found["until"]).timestamp() if found else None
        except ValueError:
            until = None
        if until is not None and time.time() > until + STALE_AFTER_S:
            return errors.StaleLockError(
                f"{self.root} has been locked by {holder} since {found['since']}, past the end it expected "
                f"({found['until']}): that run is stuck; stop it and run again"
            )
        return errors.ArchiveLockedError(f"{self.root} is in use by {line or holder}; try again when it finishes")

    def sweep_tmp(self) -> int:
        """Remove what an interrupted run left in tmp/ (never a published note). The folder
        is opened without following a link, and its entries are removed by name, so
        nothing outside it can be reached; a folder in it is refused, not descended."""
        try:
            fd = os.open(self.tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise errors.UnsafeStateFolderError(
                f"{self.tmp} cannot be opened as a folder of its own ({exc.strerror}): adbvoice never follows "
                f"links in {PRIVATE_DIR}/; check what put it there, then move it away"
            ) from exc
        removed = 0
        try:
            for name in os.listdir(fd):
                if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise errors.UnsafeStateFolderError(
                        f"{self.tmp / name} is a folder: adbvoice's temp folder holds only files; move it away"
                    )
                os.unlink(name, dir_fd=fd)
                removed += 1
        finally:
            os.close(fd)
        return removed

    def new_temp(self) -> TempNote:
        """A temp note named by this process and a counter: unique while we hold the lock."""
        return TempNote(self.tmp / f"{os.getpid()}-{next(self._temp_names)}.part")

    def files(self) -> Iterator[PurePosixPath]:
        """Every non-folder outside `.adbvoice/`, relative to the root, in sorted walk order:
        files, and links of any kind, which are listed, never followed. The page adbvoice
        writes (layout.written_by_adbvoice) is ours, not a stray: it is not listed."""
        for folder, subfolders, names in os.walk(self.root):
            here = Path(folder)
            if here == self.root:
                subfolders[:] = [d for d in subfolders if d != PRIVATE_DIR]
            subfolders.sort()
            relative = PurePosixPath(here.relative_to(self.root).as_posix())
            for name in sorted(names) + [d for d in subfolders if (here / d).is_symlink()]:
                if not written_by_adbvoice(name):
                    yield relative / name

    def path_of(self, relpath: PurePosixPath) -> Path:
        return self.root.joinpath(*relpath.parts)

    def link(self, temp: TempNote, wanted: PurePosixPath, same_content: Callable[[Path], bool]) -> Published:
        """Link the sealed temp file at `wanted`, or at `name-2.ext`, `name-3.ext`... when the
        name is taken by other bytes. Never replaces anything. If `same_content(path)` says
        an existing file already holds these very bytes, that file is kept (`adopted`).
        Durable once unsynced_folders() are synced."""
        folder = self._make_folders(wanted.parent)
        number = 1
        adopted = False
        while True:
            name = wanted.name if number == 1 else with_suffix_number(wanted.name, number)
            target = folder / name
            try:
                self._link(temp.path, target)
                break
            except FileExistsError:
                if same_content(target):
                    adopted = True
                    break
                number += 1
            except OSError as exc:
                temp.discard()
                raise disk_error(exc, f"publishing {name}") from exc
        temp.discard()  # the final name holds the bytes now; drop the temp name
        self._unsynced.add(folder)
        return Published(wanted.parent / name, adopted)

    def unsynced_folders(self) -> list[Path]:
        """The folders that gained a note or a subfolder since the last call: once they are
        synced (durability.py), what link() published survives a power cut."""
        folders, self._unsynced = list(self._unsynced), set()
        return folders

    def _link(self, source: Path, target: Path) -> None:
        try:
            os.link(source, target)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_HARDLINKS:
                raise
            # No hard links here: rename cannot refuse to replace, so check first. Safe
            # because we hold the archive lock and nothing else writes the archive.
            if target.exists():
                raise FileExistsError(target) from exc
            os.rename(source, target)

    def _make_folders(self, relative: PurePosixPath) -> Path:
        """Create the dated folders (0700); each parent that gained one is synced later."""
        folder = self.root
        for part in relative.parts:
            parent, folder = folder, folder / part
            if folder in self._folders:
                continue
            try:
                folder.mkdir(mode=DIR_MODE)
                self._unsynced.add(parent)
            except FileExistsError:
                if not folder.is_dir() or folder.is_symlink():
                    raise errors.ArchiveNotWritableError(f"{folder} exists and is not a folder") from None
            except OSError as exc:
                raise disk_error(exc, f"creating {folder}") from exc
            self._folders.add(folder)
        return folder
