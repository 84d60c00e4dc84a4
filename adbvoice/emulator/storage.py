"""The phone's storage as adbd's sync service sees it: PHONE_DIR as shared storage, and a
folder of the emulated phone's own as `/data/local/tmp`.

On Android 10+ `/sdcard` is a symlink to `/storage/self/primary`, itself a symlink to
`/storage/emulated/0`, the real directory. We serve PHONE_DIR as that directory and
model the two links, so `lstat("/sdcard")` says "link" as on a phone. `/data/local/tmp`,
the one place of /data the shell user may write, is DATA_DIR's `local/tmp`; the sandbox
binds the same folder, so what a push leaves there a shell command finds. Every other
path does not exist (and cannot be created: EACCES, as for the shell user). Nothing
outside these folders is ever read or written: each path is resolved with the host's
realpath and refused (ENOENT, as for a target the phone's sandbox lacks) when it leaves
them, so a symlink inside PHONE_DIR that points out is listed as a link but cannot be
followed.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# (path components, link target, mode) of the links above the storage root. Android
# creates /sdcard as `lrw-r--r--` (system/core/rootdir), /storage/self/primary 0777.
_LINKS = (
    ((b"sdcard",), b"/storage/self/primary", stat.S_IFLNK | 0o644),
    ((b"storage", b"self", b"primary"), b"/storage/emulated/0", stat.S_IFLNK | 0o777),
)
_ROOT = (b"storage", b"emulated", b"0")
_DATA = (b"data",)
# Files in Android's root image carry the build epoch, 2009-01-01 00:00:00 UTC.
_ANDROID_EPOCH = 1230768000


@dataclass(frozen=True)
class FileStat:
    """The fields of `struct stat` that the sync protocol carries."""

    dev: int
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    atime: int
    mtime: int
    ctime: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(
            st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid,
            st.st_size, int(st.st_atime), int(st.st_mtime), int(st.st_ctime),
        )


def _shell_may_read(st: os.stat_result) -> bool:
    """Whether adbd, running as the shell user, may read a file. The sandbox maps our uid
    to the shell's (2000), so our files are the shell's; the kernel checks this itself
    unless we are root, whom it lets read everything (a `chmod a-r` file included)."""
    if os.geteuid() != 0:
        return True
    return bool(st.st_mode & (stat.S_IRUSR if st.st_uid == 0 else stat.S_IROTH))


def _link_stat(target: bytes, mode: int, ino: int) -> FileStat:
    return FileStat(0, ino, mode, 1, 0, 0, len(target), *(_ANDROID_EPOCH,) * 3)


class PhoneStorage:
    """Maps phone paths (raw bytes, as they come off the wire) to files in PHONE_DIR and
    DATA_DIR (which holds `local/tmp`)."""

    def __init__(self, root: Path, data: Path) -> None:
        self._root = os.fsencode(os.path.realpath(root))
        self._data = os.fsencode(os.path.realpath(data))

    def _inside(self, real: bytes, base: bytes | None = None) -> bool:
        bases = (base,) if base else (self._root, self._data)
        return any(real == b or real.startswith(b + b"/") for b in bases)

    def _components(self, path: bytes) -> tuple[list[bytes], bool]:
        """adbd's cwd is "/", so relative paths count from the root; like the kernel,
        a trailing slash forces the last link to be followed."""
        parts = [p for p in path.split(b"/") if p and p != b"."]
        return parts, path.endswith(b"/") or path.endswith(b"/.")

    def _map(self, path: bytes, follow: bool) -> tuple[bytes | None, FileStat | None]:
        """(host path, None), or (None, stat of a model link), or raises ENOENT."""
        parts, trailing = self._components(path)
        follow = follow or trailing
        for ino, (link, target, mode) in enumerate(_LINKS, start=2):
            if tuple(parts[: len(link)]) == link:
                if len(parts) == len(link) and not follow:
                    return None, _link_stat(target, mode, ino)
                parts = list(_ROOT) + parts[len(link):]
                break
        if tuple(parts[:3]) == _ROOT:
            base, rest = self._root, parts[3:]
        elif tuple(parts[:1]) == _DATA:
            base, rest = self._data, parts[1:]
        else:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        if follow or not rest or rest[-1] == b"..":
            real = checked = os.path.realpath(os.path.join(base, *rest))
        else:  # lstat: resolve the folders, never the last name
            checked = os.path.realpath(os.path.join(base, *rest[:-1]))
            real = os.path.join(checked, rest[-1])
        if not self._inside(checked, base):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        return real + (b"/" if trailing and rest else b""), None

    def stat(self, path: bytes, follow: bool) -> FileStat:
        """stat(2) or lstat(2) of a phone path; raises OSError with the errno a phone gives."""
        real, link = self._map(path, follow)
        if link is not None:
            return link
        assert real is not None
        return FileStat.of(os.stat(real) if follow else os.lstat(real))

    def open_dir(self, path: bytes) -> bytes:
        """The host directory to list for opendir(path); raises OSError."""
        real, _ = self._map(path, follow=True)
        assert real is not None
        if not stat.S_ISDIR(os.stat(real).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        return real

    def entry_stat(self, directory: bytes, name: bytes) -> FileStat:
        """lstat of one entry of a directory returned by open_dir; ".." of the storage
        root is the phone's /storage/emulated, which we do not show, so it reads as the
        root itself."""
        real = os.path.join(directory, name)
        if name == b".." and not self._inside(os.path.realpath(real)):
            real = directory
        return FileStat.of(os.lstat(real))

    def open_file(self, path: bytes) -> int:
        """open(path, O_RDONLY) as adbd's RECV does (following links); an fd, or OSError.

        O_NONBLOCK keeps a FIFO in PHONE_DIR from hanging the phone; regular files and
        directories ignore it.
        """
        real, _ = self._map(path, follow=True)
        assert real is not None
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        if not _shell_may_read(os.fstat(fd)):
            os.close(fd)
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return fd

    # -- writing, as adbd's SEND does (daemon/file_sync_service.cpp) ----------------------

    def _writable(self, path: bytes) -> bytes:
        """The host path a push to `path` writes (its last name not followed); EACCES
        where the shell user could not create anything."""
        try:
            real, link = self._map(path, follow=False)
        except FileNotFoundError:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES)) from None
        real = (real or b"").rstrip(b"/")
        folder = os.path.realpath(os.path.dirname(real))
        writable = (self._root, os.path.join(self._data, b"local", b"tmp"))
        if link is not None or not any(folder == w or folder.startswith(w + b"/") for w in writable):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real

    def lstat_for_write(self, path: bytes) -> os.stat_result | None:
        """lstat of a push's target; None when nothing is there."""
        try:
            return os.lstat(self._writable(path))
        except (FileNotFoundError, PermissionError):
            return None

    def unlink(self, path: bytes) -> None:
        try:
            os.unlink(self._writable(path))
        except OSError:
            pass  # adb_unlink's result is never looked at

    def create(self, path: bytes, mode: int) -> int:
        """open(path, O_WRONLY | O_CREAT | O_EXCL, mode) as handle_send_file does: an
        existing file is opened for writing instead; an fd, or OSError."""
        real = self._writable(path)
        try:
            fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            fd = os.open(real, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        os.fchmod(fd, mode)  # the umask does not apply to adbd's pushes
        return fd

    def make_parents(self, path: bytes) -> None:
        """secure_mkdirs(dirname(path)): every missing folder, 0775; OSError on failure."""
        parent = path.rstrip(b"/").rsplit(b"/", 1)[0] or b"/"
        parts = [p for p in parent.split(b"/") if p]
        for count in range(1, len(parts) + 1):
            partial = b"/" + b"/".join(parts[:count])
            try:
                real = self._writable(partial)
            except PermissionError:
                continue  # a folder above the writable roots: it exists on every phone
            try:
                os.mkdir(real, 0o775)
            except FileExistsError:
                continue

    def symlink(self, target: bytes, path: bytes) -> None:
        os.symlink(target, self._writable(path))

    def readlink(self, path: bytes) -> bytes | None:
        try:
            return os.readlink(self._writable(path))
        except OSError:
            return None

    def set_mtime(self, path: bytes, mtime: int) -> None:
        """lutimes(path, {mtime, mtime}): a link's own time, never its target's."""
        try:
            os.utime(self._writable(path), (mtime, mtime), follow_symlinks=False)
        except OSError:
            pass  # adbd ignores lutimes' result

    def host_path(self, path: bytes) -> bytes | None:
        """The host file a phone path names after following links, if it is inside."""
        try:
            real, _ = self._map(path, follow=True)
        except OSError:
            return None
        return real
