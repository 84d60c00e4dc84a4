"""The `sync:` service: adbd's daemon/file_sync_service.cpp, over the phone's storage.

Requests are parsed in order from a byte buffer, as adbd reads them from its socket, so
a host may pipeline any number of them in one WRTE or across WRTEs. Answers are
buffered and handed to the stream when the service is about to wait for input (or has
a WRTE's worth), so answers to pipelined requests travel together. Any failure that
adbd answers with FAIL also ends the service, closing the stream: later pipelined
requests are not answered.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable
from typing import NoReturn

from adbvoice.emulator import compression
from adbvoice.emulator.faults import FaultState
from adbvoice.emulator.storage import FileStat, PhoneStorage
from adbvoice.emulator.stream import Stream, StreamClosed
from adbvoice.phone import wire

# RCV2 flags we can honour: the compressions whose library is here (compression.py);
# SND2: those and a dry run. Any other gets adbd's answer to flags it does not know.
_CODECS = compression.available()
_COMPRESSION_FLAGS = sum(_CODECS)
_SUPPORTED_RECV_FLAGS = _COMPRESSION_FLAGS
_SUPPORTED_SEND_FLAGS = wire.SYNC_FLAG_DRY_RUN | _COMPRESSION_FLAGS
_DATA_READ = 256 * 1024  # a DATA payload is written on as it arrives, this much at a time

logger = logging.getLogger(__name__)


class _End(Exception):
    """The service ends here (adbd's handlers returning false)."""


class _LinkBroken(Exception):
    """A drop or stall fault fired: leave without closing the stream politely."""


class SyncService:
    """One `sync:` stream. `break_link(action)` drops or stalls the whole connection."""

    def __init__(
        self,
        stream: Stream,
        storage: PhoneStorage,
        faults: FaultState,
        break_link: Callable[[str], None],
    ) -> None:
        self._stream = stream
        self._storage = storage
        self._faults = faults
        self._break_link = break_link
        self._in = bytearray()
        self._out = bytearray()

    def run(self) -> None:
        try:
            while True:
                self._handle_request()
        except (_LinkBroken, StreamClosed):
            return
        except _End:
            pass
        try:
            self._flush()
        except StreamClosed:
            return
        self._stream.finish()

    # -- byte plumbing ---------------------------------------------------------------

    def _read_exact(self, n: int) -> bytes:
        while len(self._in) < n:
            if not self._stream.has_input():
                self._flush()
            self._in += self._stream.read()
        data = bytes(self._in[:n])
        del self._in[:n]
        return data

    def _send(self, data: bytes) -> None:
        self._out += data
        if len(self._out) >= self._stream.host.max_payload:
            self._flush()

    def _flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            self._stream.write(data)

    def _fail(self, reason: str) -> NoReturn:
        """SendSyncFail: FAIL with a message; the caller then ends the service."""
        text = reason.encode("utf-8", "surrogateescape")
        self._send(wire.SYNC_REQUEST.pack(wire.ID_FAIL, len(text)) + text)
        raise _End()

    def _fail_errno(self, what: str, error: OSError) -> NoReturn:
        """SendSyncFailErrno: "<what>: <strerror(errno)>"."""
        self._fail(f"{what}: {os.strerror(error.errno or errno.EIO)}")

    # -- requests (handle_sync_command) ------------------------------------------------

    def _handle_request(self) -> None:
        ident, length = wire.SYNC_REQUEST.unpack(self._read_exact(wire.SYNC_REQUEST.size))
        if length > wire.SYNC_PATH_MAX:
            self._fail("path too long")
        # adbd reads the path into a C string: it ends at the first NUL.
        path = self._read_exact(length).split(b"\0", 1)[0]
        logger.debug("sync: %s %r", ident.decode("latin-1"), path)
        if ident == wire.ID_LSTAT_V1:
            self._lstat_v1(path)
        elif ident in (wire.ID_STAT_V2, wire.ID_LSTAT_V2):
            self._stat_v2(ident, path)
        elif ident in (wire.ID_LIST_V1, wire.ID_LIST_V2):
            self._list(path, v2=ident == wire.ID_LIST_V2)
        elif ident == wire.ID_RECV_V1:
            self._recv(path)
        elif ident == wire.ID_RECV_V2:
            self._recv_v2(path)
        elif ident == wire.ID_SEND_V1:
            self._send_v1(path)
        elif ident == wire.ID_SEND_V2:
            self._send_v2(path)
        elif ident == wire.ID_QUIT:
            raise _End()
        else:
            self._fail(f"unknown command {int.from_bytes(ident, 'little'):08x}")

    def _lstat_v1(self, path: bytes) -> None:
        # adbd ignores lstat's result here: a missing file is all zeros.
        try:
            st = self._claimed(path, self._storage.stat(path, follow=False))
            mode, size, mtime = st.mode, st.size, st.mtime
        except OSError:
            mode = size = mtime = 0
        self._send(
            wire.SYNC_STAT_V1.pack(
                wire.ID_LSTAT_V1, mode, size & 0xFFFFFFFF, mtime & 0xFFFFFFFF
            )
        )

    def _stat_v2(self, ident: bytes, path: bytes) -> None:
        try:
            st = self._claimed(path, self._storage.stat(path, follow=ident == wire.ID_STAT_V2))
        except OSError as e:
            self._send(wire.SYNC_STAT_V2.pack(ident, e.errno or errno.EIO, *(0,) * 10))
            return
        self._send(wire.SYNC_STAT_V2.pack(ident, 0, *_v2_fields(st)))

    def _list(self, path: bytes, v2: bool) -> None:
        try:
            directory = self._storage.open_dir(path)
            names = [b".", b".."] + [entry.name for entry in os.scandir(directory)]
        except OSError:
            names = []  # opendir failed: adbd just says DONE
        for name in names:
            try:
                st = self._claimed(path.rstrip(b"/") + b"/" + name, self._storage.entry_stat(directory, name))
            except OSError as e:
                if not v2:
                    continue  # v1 skips entries it cannot lstat
                head = wire.SYNC_DENT_V2.pack(
                    wire.ID_DENT_V2, e.errno or errno.EIO, *(0,) * 10, len(name)
                )
            else:
                if v2:
                    head = wire.SYNC_DENT_V2.pack(
                        wire.ID_DENT_V2, 0, *_v2_fields(st), len(name)
                    )
                else:
                    head = wire.SYNC_DENT_V1.pack(
                        wire.ID_DENT_V1,
                        st.mode,
                        st.size & 0xFFFFFFFF,
                        st.mtime & 0xFFFFFFFF,
                        len(name),
                    )
            self._send(head + name)
        # DONE is a zeroed dent of the same version (adbd memsets the struct).
        done = wire.SYNC_DENT_V2 if v2 else wire.SYNC_DENT_V1
        self._send(wire.ID_DONE + bytes(done.size - len(wire.ID_DONE)))

    def _claimed(self, path: bytes, st: FileStat) -> FileStat:
        return self._faults.claimed(path.decode("utf-8", "surrogateescape"), st)

    def _recv_v2(self, path: bytes) -> None:
        # adbd reads the setup packet without checking its id, only its flags.
        _, flags = wire.SYNC_RECV_V2.unpack(self._read_exact(wire.SYNC_RECV_V2.size))
        codec = self._codec(flags)
        unknown = flags & ~_SUPPORTED_RECV_FLAGS
        if unknown:
            self._fail(f"unknown flags: {unknown}")
        self._recv(path, codec.encoder() if codec else None)

    def _codec(self, flags: int) -> compression.Codec | None:
        """The one compression a v2 request asks for (do_send_v2, do_recv_v2)."""
        asked = [flag for flag in _CODECS if flags & flag]
        if len(asked) > 1:
            self._fail(f"multiple compression flags received: {flags}")
        return _CODECS[asked[0]] if asked else None

    def _recv(self, path: bytes, encoder: compression.Encoder | None = None) -> None:
        phone_path = path.decode("utf-8", "surrogateescape")
        if self._faults.fails(phone_path):
            self._fail_errno("open failed", PermissionError(errno.EACCES, "Permission denied"))
        try:
            fd = self._storage.open_file(path)
        except OSError as e:
            self._fail_errno("open failed", e)
        real = self._storage.host_path(path)
        try:
            first = True
            while True:
                try:
                    chunk = os.read(fd, wire.SYNC_DATA_MAX)
                except OSError as e:
                    self._fail_errno("read failed", e)
                if not chunk:
                    break
                if first:
                    chunk = self._faults.garble(phone_path, chunk)
                self._send_encoded(encoder.encode(chunk) if encoder else chunk)
                if first and real is not None:
                    self._faults.maybe_grow(phone_path, real)
                first = False
        finally:
            os.close(fd)
        if encoder is not None:
            self._send_encoded(encoder.finish())
        self._send(wire.SYNC_REQUEST.pack(wire.ID_DONE, 0))

    def _send_encoded(self, data: bytes) -> None:
        """An encoder's output, in DATA packets of at most SYNC_DATA_MAX (none if empty)."""
        for start in range(0, len(data), wire.SYNC_DATA_MAX):
            self._send_data(data[start : start + wire.SYNC_DATA_MAX])

    def _send_data(self, chunk: bytes) -> None:
        allowed, action = self._faults.admit(len(chunk))
        if action is None:
            self._send(wire.SYNC_REQUEST.pack(wire.ID_DATA, len(chunk)) + chunk)
            return
        if allowed:
            # The header promises the whole chunk; the link breaks inside it.
            self._send(wire.SYNC_REQUEST.pack(wire.ID_DATA, len(chunk)) + chunk[:allowed])
        self._flush()
        self._stream.drain()
        self._break_link(action)
        raise _LinkBroken(action)


    # -- SEND (do_send_v1, do_send_v2, send_impl) ------------------------------------------

    def _send_v1(self, spec: bytes) -> None:
        """`PATH,MODE`, MODE as strtoul(…, 0) reads it (adb sends it in decimal)."""
        path, comma, mode_text = spec.rpartition(b",")
        if not comma:
            self._fail("missing , in ID_SEND_V1")
        self._send_file_or_link(path, _strtoul(mode_text), dry_run=False)

    def _send_v2(self, path: bytes) -> None:
        _, mode, flags = wire.SYNC_SEND_V2.unpack(self._read_exact(wire.SYNC_SEND_V2.size))
        codec = self._codec(flags)
        unknown = flags & ~_SUPPORTED_SEND_FLAGS
        if unknown:
            self._fail(f"unknown flags: {unknown}")
        self._send_file_or_link(path, mode, dry_run=bool(flags & wire.SYNC_FLAG_DRY_RUN),
                                decoder=codec.decoder() if codec else None)

    def _send_file_or_link(
        self, path: bytes, mode: int, dry_run: bool, decoder: compression.Decoder | None = None
    ) -> None:
        """send_impl: a regular file (or a link that a file replaces) is removed first, so
        a push replaces what was there; the file gets the DONE's mtime."""
        do_unlink = False
        if not dry_run:
            st = self._storage.lstat_for_write(path)
            do_unlink = st is None or stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and not stat.S_ISLNK(mode))
        if do_unlink:
            self._storage.unlink(path)
        if stat.S_ISLNK(mode):
            mtime = self._receive_link(path, dry_run)
        else:
            mode &= 0o777
            mode |= (mode >> 3) & 0o070  # the user's bits for group and others too
            mode |= (mode >> 3) & 0o007
            mtime = self._receive_file(path, mode, dry_run, do_unlink, decoder)
        if not dry_run:
            self._storage.set_mtime(path, mtime)

    def _receive_file(
        self, path: bytes, mode: int, dry_run: bool, do_unlink: bool, decoder: compression.Decoder | None
    ) -> int:
        """handle_send_file: create (making the missing folders), write the DATA as it
        comes, OKAY at DONE. On failure FAIL, then the rest of the file's DATA is read and
        dropped (old hosts write on without reading) and the half file removed."""
        fd = -1
        try:
            if not dry_run:
                fd = self._create(path, mode)
            mtime = self._receive_data(fd, decoder)
        except _End:
            self._drain_data()
            if do_unlink:
                self._storage.unlink(path)
            raise
        finally:
            if fd >= 0:
                os.close(fd)
        self._send(wire.SYNC_REQUEST.pack(wire.ID_OKAY, 0))
        return mtime

    def _create(self, path: bytes, mode: int) -> int:
        if self._faults.read_only(path.decode("utf-8", "surrogateescape")):
            self._fail_errno("couldn't create file", OSError(errno.EROFS, os.strerror(errno.EROFS)))
        try:
            return self._storage.create(path, mode)
        except FileNotFoundError:
            try:
                self._storage.make_parents(path)
            except OSError as e:
                self._fail_errno("secure_mkdirs() failed", e)
        except OSError as e:
            self._fail_errno("couldn't create file", e)
        try:
            return self._storage.create(path, mode)
        except OSError as e:
            self._fail_errno("couldn't create file", e)

    def _receive_data(self, fd: int, decoder: compression.Decoder | None) -> int:
        """DATA chunks (decoded, if compressed) into `fd` (-1: a dry run) until DONE; its
        mtime."""
        while True:
            ident, size = wire.SYNC_REQUEST.unpack(self._read_exact(wire.SYNC_REQUEST.size))
            if ident == wire.ID_DONE:
                if decoder is not None:
                    try:
                        decoder.finish()
                    except compression.CodecError:
                        self._fail("decompress failed")
                return size
            if ident != wire.ID_DATA:
                self._fail("invalid data message")
            while size:
                piece = self._read_exact(min(size, _DATA_READ))
                size -= len(piece)
                action = self._faults.pushed(len(piece))
                if action is not None:
                    self._break_link(action)
                    raise _LinkBroken(action)
                if decoder is not None:
                    try:
                        piece = decoder.decode(piece)
                    except compression.CodecError:
                        self._fail("decompress failed")
                if fd >= 0:
                    try:
                        _write_all(fd, piece)
                    except OSError as e:
                        self._fail_errno("write failed", e)

    def _drain_data(self) -> None:
        while True:
            ident, size = wire.SYNC_REQUEST.unpack(self._read_exact(wire.SYNC_REQUEST.size))
            if ident != wire.ID_DATA or size > wire.SYNC_DATA_MAX:
                return
            self._read_exact(size)

    def _receive_link(self, path: bytes, dry_run: bool) -> int:
        """handle_send_link: one DATA holding the target (NUL-terminated), then DONE."""
        ident, size = wire.SYNC_REQUEST.unpack(self._read_exact(wire.SYNC_REQUEST.size))
        if ident != wire.ID_DATA:
            self._fail("invalid data message: expected ID_DATA")
        if size > wire.SYNC_DATA_MAX:
            self._fail("oversize data message")
        target = self._read_exact(size).split(b"\0", 1)[0]
        if not dry_run and self._storage.readlink(path) != target:
            self._storage.unlink(path)
            try:
                try:
                    self._storage.symlink(target, path)
                except FileNotFoundError:
                    try:
                        self._storage.make_parents(path)
                    except OSError as e:
                        self._fail_errno("secure_mkdirs failed", e)
                    self._storage.symlink(target, path)
            except OSError as e:
                self._fail_errno("symlink failed", e)
        ident, size = wire.SYNC_REQUEST.unpack(self._read_exact(wire.SYNC_REQUEST.size))
        if ident != wire.ID_DONE:
            self._fail("invalid data message: expected ID_DONE")
        self._send(wire.SYNC_REQUEST.pack(wire.ID_OKAY, 0))
        return size


def _strtoul(text: bytes) -> int:
    """C's strtoul(text, NULL, 0): 0x… hex, 0… octal, else decimal, up to the first
    character that is not a digit of that base (so "garbage" is 0, as for adbd)."""
    text = text.strip()
    base, digits = 10, text
    if text[:2].lower() == b"0x":
        base, digits = 16, text[2:]
    elif text[:1] == b"0":
        base = 8
    valid = b"0123456789abcdef"[:base]
    end = 0
    while end < len(digits) and digits[end : end + 1].lower() in [bytes([c]) for c in valid]:
        end += 1
    return int(digits[:end], base) if end else 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _v2_fields(st: FileStat) -> tuple[int, ...]:
    return (
        st.dev, st.ino, st.mode, st.nlink, st.uid, st.gid,
        st.size, st.atime, st.mtime, st.ctime,
    )
