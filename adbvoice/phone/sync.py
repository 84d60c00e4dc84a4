"""The `sync:` file service, with requests pipelined.

adbd's sync service reads requests one after the other from its socket and answers each
in order (daemon/file_sync_service.cpp), so a client may send many requests before
reading the first answer: a whole folder level of LISTs, every RECV of a backup, or every
SEND of a restore, in one round trip instead of one per request. One hazard shapes this
module: after a FAIL the service *ends* (the stream closes), so requests queued behind a
failed RECV or SEND are never answered and must be sent again on a fresh stream.
"""

from __future__ import annotations

import stat as statmod
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from adbvoice.phone import wire
from adbvoice.phone.connection import LinkClosed, SentTooMuch, StreamEnded

# What a phone's answers may hold (see README, "Everything the phone sends is bounded"):
# a name in a LIST is at most a path (adbd refuses longer paths itself; a FAT or exFAT
# card's 255 UTF-16 units take up to 765 bytes of UTF-8); a FAIL's text is adbd's
# strerror() and a path; a walk finds at most two million names (a million notes, their
# folders, and as many files that are not notes).
NAME_MAX_BYTES = wire.SYNC_PATH_MAX
FAIL_TEXT_MAX = 4096
WALK_ENTRIES_MAX = 2_000_000


class ByteStream(Protocol):
    """What the sync and shell clients need from a stream (ADB stream or adb-server socket)."""

    def write(self, data: bytes) -> None: ...

    def read(self, limit: int) -> bytes: ...

    def read_exact(self, size: int) -> bytes: ...

    def readable_now(self) -> bool: ...

    def close(self) -> None: ...


class StreamOpener(Protocol):
    """Opens a stream to a phone service. A `background` stream's output is not urgent:
    the link may let the phone gather it into fewer, larger writes."""

    def __call__(self, service: str, *, background: bool = False) -> ByteStream: ...


class SyncError(Exception):
    """The phone answered a sync request with FAIL."""


class FileAbandoned(Exception):
    """Raised by a PullSink that wants no more of the file in flight (more bytes than the
    phone listed arrived): the stream is dropped, and the pull goes on with the next file
    on a fresh one."""


@dataclass(frozen=True)
class RemoteStat:
    """lstat() of a phone path as sync reports it; `exists` is False for a missing path."""

    mode: int
    size: int
    mtime: int
    exists: bool = True

    @property
    def is_dir(self) -> bool:
        return statmod.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return statmod.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return statmod.S_ISLNK(self.mode)


@dataclass(frozen=True)
class RemoteEntry:
    """One name found while walking the phone: raw path bytes, as the phone has them."""

    path: bytes
    stat: RemoteStat


@dataclass(frozen=True)
class PushItem:
    """One file to put on the phone: where, its permission bits, the time it gets, and a
    way to read its bytes from the start (again, should the push be repeated)."""

    remote: bytes
    mode: int
    mtime: int
    chunks: Callable[[], Iterator[bytes]]


class PushSink(Protocol):
    """Told how each push ended, in order."""

    def pushed(self, index: int) -> None:
        """The phone answered OKAY: the file is whole at its path."""

    def refused(self, index: int, message: str) -> None:
        """The phone answered FAIL (its wording, e.g. 'write failed: No space left on device')."""


class PullSink(Protocol):
    """Receives one pulled file at a time, in request order."""

    def begin(self, index: int) -> None: ...

    def chunk(self, data: bytes) -> None: ...

    def finish(self, after: RemoteStat) -> None:
        """The whole file arrived; `after` is lstat() taken by the phone just after sending it."""

    def fail(self, message: str) -> None:
        """The phone refused or broke off this file (its wording, e.g. 'open failed: ...')."""


class SyncClient:
    """Pipelined STAT / LIST / RECV over `sync:` streams."""

    # SENDs written ahead of their answers: enough to keep the link busy, few enough that a
    # FAIL (which ends the service) costs little to send again.
    PUSHES_IN_FLIGHT = 64

    def __init__(self, opener: StreamOpener, *, stat_v2: bool, ls_v2: bool, send_v2: bool = False) -> None:
        self._opener = opener
        self._stat_v2 = stat_v2
        self._ls_v2 = ls_v2
        self._send_v2 = send_v2

    # --- requests and answers ----------------------------------------------------

    def _stat_request(self, path: bytes) -> bytes:
        return _request(wire.ID_LSTAT_V2 if self._stat_v2 else wire.ID_LSTAT_V1, path)

    def _list_request(self, path: bytes) -> bytes:
        return _request(wire.ID_LIST_V2 if self._ls_v2 else wire.ID_LIST_V1, path)

    def _read_stat(self, stream: ByteStream) -> RemoteStat:
        if self._stat_v2:
            fields = _read_struct(stream, wire.SYNC_STAT_V2, (wire.ID_LSTAT_V2,))
            error, mode, size, mtime = fields[1], fields[4], fields[8], fields[10]
            if error:
                return RemoteStat(0, 0, 0, exists=False)
            return RemoteStat(mode, size, mtime)
        _ident, mode, size, mtime = _read_struct(stream, wire.SYNC_STAT_V1, (wire.ID_LSTAT_V1,))
        # v1 answers a missing path with all zeros (do_lstat_v1 ignores lstat's error).
        return RemoteStat(mode, size, mtime, exists=mode != 0)

    def _read_listing(self, stream: ByteStream) -> list[tuple[bytes, RemoteStat]]:
        entries = []
        layout, dent = (wire.SYNC_DENT_V2, wire.ID_DENT_V2) if self._ls_v2 else (wire.SYNC_DENT_V1, wire.ID_DENT_V1)
        while True:
            fields = _read_struct(stream, layout, (dent, wire.ID_DONE))
            if fields[0] == wire.ID_DONE:
                return entries
            if self._ls_v2:
                error, mode, size, mtime, namelen = fields[1], fields[4], fields[8], fields[10], fields[12]
            else:
                error, (mode, size, mtime, namelen) = 0, fields[1:]
            if namelen > NAME_MAX_BYTES:
                raise SentTooMuch(f"the phone listed a name of {namelen:,} bytes (at most {NAME_MAX_BYTES:,})")
            name = stream.read_exact(namelen)
            if not error and name not in (b".", b".."):
                entries.append((name, RemoteStat(mode, size, mtime)))
                if len(entries) > WALK_ENTRIES_MAX:
                    raise SentTooMuch(f"the phone listed more than {WALK_ENTRIES_MAX:,} names in one folder")

    # --- operations ----------------------------------------------------------------

    def stat_many(self, paths: Sequence[bytes]) -> list[RemoteStat]:
        """lstat every path in one round trip."""
        if not paths:
            return []
        stream = self._opener("sync:")
        try:
            stream.write(b"".join(self._stat_request(p) for p in paths))
            return [self._read_stat(stream) for _ in paths]
        finally:
            _quit(stream)

    def walk(self, roots: Sequence[bytes]) -> tuple[dict[bytes, RemoteStat], list[RemoteEntry]]:
        """(lstat of each root, every non-directory below the roots that are folders).

        One round trip per folder depth: each level's LISTs go out together. Symbolic links
        are reported, never followed, so a link cannot lead the walk out of a source folder.
        """
        stream = self._opener("sync:")
        try:
            stream.write(b"".join(self._stat_request(r) + self._list_request(r) for r in roots))
            root_stats: dict[bytes, RemoteStat] = {}
            level: list[bytes] = []
            found: list[RemoteEntry] = []
            for root in roots:
                root_stats[root] = self._read_stat(stream)
                listing = self._read_listing(stream)
                if root_stats[root].is_dir:
                    level += _sort_entries(root, listing, found)
            while level:
                stream.write(b"".join(self._list_request(d) for d in level))
                next_level: list[bytes] = []
                for folder in level:
                    next_level += _sort_entries(folder, self._read_listing(stream), found)
                if len(found) + len(next_level) > WALK_ENTRIES_MAX:
                    raise SentTooMuch(f"the phone listed more than {WALK_ENTRIES_MAX:,} names")
                level = next_level
            return root_stats, found
        finally:
            _quit(stream)

    def pull_many(self, paths: Sequence[bytes], sink: PullSink) -> None:
        """RECV every path, each followed by an lstat taken by the phone right after sending
        it, all pipelined. Calls sink.begin/chunk.../finish (or fail) for each, in order."""
        start = 0
        while start < len(paths):
            start = self._pull_from(paths, start, sink)

    def _pull_from(self, paths: Sequence[bytes], start: int, sink: PullSink) -> int:
        """Pull paths[start:] on one stream; return where to resume (after a FAIL ended it)."""
        stream = self._opener("sync:")
        clean = False
        try:
            stream.write(
                b"".join(_request(wire.ID_RECV_V1, p) + self._stat_request(p) for p in paths[start:])
            )
            for index in range(start, len(paths)):
                sink.begin(index)
                try:
                    failure = _receive_file(stream, sink)
                except FileAbandoned:
                    return index + 1  # the stream is dropped below: reopen for the rest
                if failure is not None:
                    sink.fail(failure)
                    return index + 1  # the service has ended: reopen for the rest
                sink.finish(self._read_stat(stream))
            clean = True
            return len(paths)
        finally:
            if clean:
                _quit(stream)
            else:
                stream.close()


    def push_many(self, items: Sequence[PushItem], sink: PushSink) -> None:
        """SEND every item, pipelined on one stream (SND2 where the phone offers it, else
        SEND `path,mode`); sink.pushed or sink.refused for each, in order."""
        start = 0
        while start < len(items):
            start = self._push_from(items, start, sink)

    def _push_from(self, items: Sequence[PushItem], start: int, sink: PushSink) -> int:
        """Push items[start:] on one stream; where to resume after a FAIL ended it."""
        stream = self._opener("sync:")
        answered = start  # the next item whose answer is due
        clean = False
        try:
            for index in range(start, len(items)):
                while index - answered >= self.PUSHES_IN_FLIGHT or (answered < index and stream.readable_now()):
                    if not _push_answer(stream, answered, sink):
                        return answered + 1
                    answered += 1
                try:
                    self._send_one(stream, items[index])
                except StreamEnded:
                    break  # a FAIL ended the service: its answer is waiting
            while answered < len(items) and answered <= index:
                if not _push_answer(stream, answered, sink):
                    return answered + 1
                answered += 1
            clean = True
            return answered
        finally:
            if clean:
                _quit(stream)
            else:
                stream.close()

    def _send_one(self, stream: ByteStream, item: PushItem) -> None:
        if self._send_v2:
            stream.write(_request(wire.ID_SEND_V2, item.remote)
                         + wire.SYNC_SEND_V2.pack(wire.ID_SEND_V2, item.mode, 0))
        else:
            stream.write(_request(wire.ID_SEND_V1, item.remote + b",%d" % item.mode))
        pending = bytearray()
        for chunk in item.chunks():
            pending += chunk
            while len(pending) >= wire.SYNC_DATA_MAX:
                stream.write(_data(pending[: wire.SYNC_DATA_MAX]))
                del pending[: wire.SYNC_DATA_MAX]
        if pending:
            stream.write(_data(pending))
        stream.write(wire.SYNC_REQUEST.pack(wire.ID_DONE, item.mtime & 0xFFFFFFFF))


def _data(payload: bytes | bytearray) -> bytes:
    return wire.SYNC_REQUEST.pack(wire.ID_DATA, len(payload)) + bytes(payload)


def _push_answer(stream: ByteStream, index: int, sink: PushSink) -> bool:
    """Read one SEND's answer; False after a FAIL (the service has ended)."""
    ident, length = wire.SYNC_REQUEST.unpack(stream.read_exact(wire.SYNC_REQUEST.size))
    if ident == wire.ID_OKAY:
        sink.pushed(index)
        return True
    if ident == wire.ID_FAIL:
        sink.refused(index, _fail_text(stream, length))
        return False
    raise LinkClosed(f"unexpected sync answer {ident!r} to a push")


def _receive_file(stream: ByteStream, sink: PullSink) -> str | None:
    """Feed DATA chunks to the sink until DONE (None) or FAIL (its message)."""
    while True:
        ident, length = wire.SYNC_REQUEST.unpack(stream.read_exact(wire.SYNC_REQUEST.size))
        if ident == wire.ID_DONE:
            return None
        if ident == wire.ID_FAIL:
            return _fail_text(stream, length)
        if ident != wire.ID_DATA:
            raise LinkClosed(f"unexpected sync answer {ident!r} during a file transfer")
        if length > wire.SYNC_DATA_MAX:
            raise LinkClosed(f"the phone sent a {length}-byte DATA chunk (limit {wire.SYNC_DATA_MAX})")
        while length:
            part = stream.read(length)
            if not part:
                raise LinkClosed("the file transfer ended early")
            sink.chunk(part)
            length -= len(part)


def _sort_entries(folder: bytes, listing: Iterable[tuple[bytes, RemoteStat]], found: list[RemoteEntry]) -> list[bytes]:
    """Append files and links to `found`; return the subfolders to list next."""
    subfolders = []
    for name, st in listing:
        path = folder.rstrip(b"/") + b"/" + name
        if st.is_dir:
            subfolders.append(path)
        else:
            found.append(RemoteEntry(path, st))
    return subfolders


def _request(ident: bytes, path: bytes) -> bytes:
    if len(path) > wire.SYNC_PATH_MAX:
        raise SyncError(f"path too long for the sync protocol ({len(path)} bytes)")
    return wire.SYNC_REQUEST.pack(ident, len(path)) + path


def _read_struct(stream: ByteStream, layout: struct.Struct, wanted: tuple[bytes, ...]) -> tuple:
    """Read one answer of `layout`, whose first field is its id; a FAIL is only 8 bytes
    plus its message, so the id and the next word are read first."""
    head = stream.read_exact(wire.SYNC_REQUEST.size)
    ident, length = wire.SYNC_REQUEST.unpack(head)
    if ident == wire.ID_FAIL:
        raise SyncError(_fail_text(stream, length))
    if ident not in wanted:
        stream.close()
        raise LinkClosed(f"unexpected sync answer {ident!r} (wanted {wanted})")
    return layout.unpack(head + stream.read_exact(layout.size - len(head)))


def _fail_text(stream: ByteStream, length: int) -> str:
    if length > FAIL_TEXT_MAX:
        raise SentTooMuch(f"the phone sent a {length:,}-byte FAIL text (at most {FAIL_TEXT_MAX:,})")
    return stream.read_exact(length).decode("utf-8", "replace")


def _quit(stream: ByteStream) -> None:
    try:
        stream.write(wire.SYNC_REQUEST.pack(wire.ID_QUIT, 0))
    except LinkClosed:
        pass
    stream.close()
