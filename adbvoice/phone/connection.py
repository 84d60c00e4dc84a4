"""One ADB connection to a phone's adbd, carrying many streams at once.

adb-shell 0.4.4 opens one stream per call and waits for every reply, which costs a round
trip per file; we need several streams in flight and requests pipelined inside a stream
(docs/dev/protocol.md in AOSP's adb: OPEN/OKAY/WRTE/CLSE, one unacknowledged WRTE per
stream and direction). This module is that message layer. After the handshake a reader
thread takes every message as it arrives, queues its data for its stream and acknowledges
it at once, as adbd's own transport thread does: the phone may send a stream's next WRTE
only after our OKAY, so an OKAY that waited until we had used the data before kept the
link idle for that long (a quarter of the time on a USB-2-like link).
"""

from __future__ import annotations

import collections
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from adbvoice import errors
from adbvoice.phone import wire
from adbvoice.phone.wire import Message

HOST_FEATURES = (wire.FEATURE_SHELL_V2, wire.FEATURE_STAT_V2, wire.FEATURE_LS_V2, wire.FEATURE_SENDRECV_V2)


class LinkClosed(Exception):
    """The connection ended (cable pulled, Wi-Fi dropped, adbd restarted)."""


class StreamEnded(LinkClosed):
    """One stream was closed by the phone in the middle of a record; the link may live on."""


class LinkTimeout(LinkClosed):
    """The phone sent nothing for longer than the I/O timeout."""


class PhoneMisbehaved(LinkClosed):
    """The phone sent what no real adbd sends; the link is dropped and the run ends with
    `error`'s exit code instead of "lost the phone"."""

    error: ClassVar[type[errors.AdbVoiceError]] = errors.PhoneSentTooMuchError


class MessageTooLong(PhoneMisbehaved):
    """A header claimed a payload longer than the link allows; none of it was read."""

    error = errors.PhoneMessageTooLongError


class SentTooMuch(PhoneMisbehaved):
    """Output past its cap, or a WRTE sent before we acknowledged the last one."""

    error = errors.PhoneSentTooMuchError


class DeadlinePassed(PhoneMisbehaved):
    """A request outlived its deadline: data trickling in does not extend it."""

    error = errors.PhoneTooSlowError


class Deadline:
    """When the request under way must be over, whatever the phone sends meanwhile.

    The I/O timeout alone restarts with every message, so a phone sending a byte every
    few seconds could hold a run (and the archive's lock) forever; this cannot be moved
    by anything the phone does. Shared by every stream of one phone."""

    def __init__(self) -> None:
        self._at: float | None = None
        self._what = ""

    def set(self, seconds: float, what: str) -> None:
        self._at = time.monotonic() + seconds
        self._what = f"{what} did not finish within {seconds:.0f} s"

    def clear(self) -> None:
        self._at = None

    def remaining(self) -> float | None:
        """Seconds left, None when no deadline is set; DeadlinePassed once it has passed."""
        if self._at is None:
            return None
        left = self._at - time.monotonic()
        if left <= 0:
            raise DeadlinePassed(self._what)
        return left


class AuthRefused(Exception):
    """The phone closed the connection after being offered our public key."""


class TlsRefused(Exception):
    """The phone ended TLS after the handshake, before its CNXN: it does not trust our key
    (with TLS 1.3 the client's certificate is judged only after the handshake is done)."""


class AuthTimedOut(Exception):
    """Nobody accepted our key on the phone within the allowed time."""


class ServiceRefused(Exception):
    """The phone answered OPEN with CLSE: the service does not exist or could not start."""


class Pipe(Protocol):
    """A byte transport to adbd: TCP, USB, ... Reads block at most `timeout` seconds."""

    def send(self, header: bytes, payload: bytes) -> None: ...

    def recv_exact(self, size: int, timeout: float | None) -> bytes: ...

    def close(self) -> None: ...


class Signer(Protocol):
    """adb-shell's signer interface (CryptographySigner and friends)."""

    def Sign(self, data: bytes) -> bytes: ...  # noqa: N802 - adb-shell's name

    def GetPublicKey(self) -> bytes | str: ...  # noqa: N802


class TcpPipe:
    """A TCP socket with Nagle's algorithm off.

    With Nagle on, each small request waits for the peer's delayed ACK (~40 ms on Linux):
    a 123-note backup measured 32 s with it and 0.5 s without.

    Sends give up after `send_timeout` without progress. The reader thread keeps the socket
    blocking (no Python timeout), so the limit is the kernel's SO_SNDTIMEO: without it, a
    phone gone from the Wi-Fi while we sent could hold the run until TCP itself gave up,
    about 15 minutes.
    """

    def __init__(self, host: str, port: int, connect_timeout: float, send_timeout: float) -> None:
        self._send_timeout = send_timeout
        self._sock = socket.create_connection((host, port), timeout=connect_timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        seconds, fraction = divmod(send_timeout, 1)
        timeval = struct.pack("ll", int(seconds), int(fraction * 1e6))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def send(self, header: bytes, payload: bytes) -> None:
        try:
            self._sock.sendall(header + payload)
        except (BlockingIOError, socket.timeout) as exc:  # SO_SNDTIMEO, or Python's own timeout
            raise LinkTimeout(f"the phone took no data for {self._send_timeout:g} s") from exc
        except OSError as exc:
            raise LinkClosed(f"send failed: {exc}") from exc

    def recv_some(self, limit: int, timeout: float | None) -> bytes:
        """What has arrived, at least one byte and at most `limit` (TLS reads records so)."""
        if self._sock.gettimeout() != timeout:
            self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(limit)
        except socket.timeout as exc:
            raise LinkTimeout(f"no answer from the phone for {timeout:g} s") from exc
        except OSError as exc:
            raise LinkClosed(f"connection lost: {exc}") from exc
        if not data:
            raise LinkClosed("the phone closed the connection")
        return data

    def recv_exact(self, size: int, timeout: float | None) -> bytes:
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        # The timeout bounds the whole read: a phone sending a byte at a time cannot stretch it.
        ends = None if timeout is None else time.monotonic() + timeout
        if timeout is None and self._sock.gettimeout() is not None:  # settimeout costs a system call
            self._sock.settimeout(None)
        try:
            while got < size:
                if ends is not None:
                    self._sock.settimeout(max(ends - time.monotonic(), 0.001))
                n = self._sock.recv_into(view[got:], size - got)
                if n == 0:
                    raise LinkClosed("the phone closed the connection")
                got += n
        except socket.timeout as exc:
            raise LinkTimeout(f"no answer from the phone for {timeout:g} s") from exc
        except OSError as exc:
            raise LinkClosed(f"connection lost: {exc}") from exc
        return bytes(buf)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class ExactReads:
    """`read_exact` on top of a stream's `read`, for both kinds of stream."""

    service: str

    def read(self, limit: int) -> bytes:
        raise NotImplementedError

    def read_exact(self, size: int) -> bytes:
        """Exactly `size` bytes; StreamEnded if the stream closes first."""
        parts = []
        missing = size
        while missing:
            part = self.read(missing)
            if not part:
                raise StreamEnded(f"{self.service.split(':')[0]} stream ended early")
            parts.append(part)
            missing -= len(part)
        return b"".join(parts)

    def readable_now(self) -> bool:
        """Whether read() would return at once (bytes arrived, or the phone closed the
        stream); False where that is not known without reading."""
        return False


@dataclass(frozen=True)
class DeviceBanner:
    """What the phone said about itself in its CNXN."""

    version: int
    maxdata: int
    props: dict[str, str]
    features: frozenset[str]


@dataclass(eq=False)
class AdbStream(ExactReads):
    """One ADB stream; its data is queued by the link's reader thread."""

    link: AdbLink
    local_id: int
    service: str
    remote_id: int = 0
    can_write: bool = False
    peer_closed: bool = False
    refused: bool = False
    _outbox: bytearray = field(default_factory=bytearray)
    _inbox: collections.deque[memoryview] = field(default_factory=collections.deque)
    background: bool = False  # see AdbLink.open
    _unread: int = 0
    _okay_owed: bool = False
    last_heard: float = field(default_factory=time.monotonic)  # the phone's last message on this stream

    def write(self, data: bytes) -> None:
        """Queue bytes for the phone; they leave as the phone acknowledges earlier writes.
        While WRITE_AHEAD bytes wait, the writer waits too (a push reads its file no faster
        than the phone takes it); StreamEnded once the phone has closed the stream."""
        link = self.link
        waiting_since = time.monotonic()
        with link._lock:
            while len(self._outbox) >= link.WRITE_AHEAD and not self.peer_closed:
                link._wait(waiting_since, self)
            if self.peer_closed:
                raise StreamEnded(f"the phone closed the {self.service.split(':')[0]} stream")
            self._outbox += data
            link._flush(self)

    def read(self, limit: int) -> bytes:
        """Up to `limit` bytes, at least one; b"" once the phone closed the stream."""
        link = self.link
        waiting_since = time.monotonic()
        with link._lock:
            while not self._inbox:
                if self.peer_closed:
                    if self.refused:
                        raise ServiceRefused(f"the phone refused the service {self.service.split(':')[0]!r}")
                    return b""
                link._wait(waiting_since, self)
            chunk = self._inbox[0]
            if len(chunk) <= limit:
                self._inbox.popleft()
            else:
                self._inbox[0] = chunk[limit:]
                chunk = chunk[:limit]
            self._unread -= len(chunk)
            link._settle_okay(self)
        return bytes(chunk)

    def readable_now(self) -> bool:
        with self.link._lock:
            return bool(self._inbox) or self.peer_closed or self.link._ended is not None

    def close(self) -> None:
        with self.link._lock:
            self.link._close_stream(self)


class AdbLink:
    """The connection: handshake, then streams multiplexed by local id."""

    # Bytes a stream may hold unread before we stop acknowledging its WRTEs, so a slow
    # reader throttles the phone instead of growing our memory.
    READ_AHEAD = 2 << 20
    # Bytes a stream may hold unsent before its writer waits: the same bound the other way.
    WRITE_AHEAD = 2 << 20

    def __init__(self, pipe: Pipe, io_timeout: float) -> None:
        self._pipe = pipe
        self._io_timeout = io_timeout
        self._streams: dict[int, AdbStream] = {}
        self._next_id = 1
        self.banner: DeviceBanner | None = None
        self.maxdata = wire.MAX_PAYLOAD_V1
        self._version = wire.A_VERSION_MIN  # until the phone's CNXN says more
        # Guards the streams and every send (so messages never interleave on the pipe).
        self._lock = threading.Condition()
        self._ended: LinkClosed | None = None  # why the reader thread stopped
        self.in_tls = False  # the phone asked for TLS (Wireless debugging) and got it
        self.deadline = Deadline()
        # What a message may carry: the protocol's own limit until the phone's CNXN, then
        # the maxdata agreed (adb's check_header does the same on the phone's side).
        self._payload_limit = wire.MAX_PAYLOAD

    # --- handshake -------------------------------------------------------------

    def connect(
        self,
        signers: Sequence[Signer],
        auth_timeout: float,
        on_prompt: Callable[[], None],
        start_tls: Callable[[Pipe], Pipe] | None = None,
    ) -> DeviceBanner:
        """CNXN, then AUTH as adb does: try each key's signature, then offer our public key
        and wait (bounded) for the user to tap Allow on the phone. A phone that answers
        STLS instead (Wireless debugging) gets STLS back, then `start_tls` turns the pipe
        into TLS, and its CNXN comes inside, with no AUTH."""
        banner = b"host::features=" + ",".join(HOST_FEATURES).encode() + b"\0"
        self._send(wire.A_CNXN, wire.A_VERSION, wire.MAX_PAYLOAD, banner)
        untried = list(signers)
        offered_key = False
        # One deadline for the whole handshake (and a fresh one for the Allow wait): any
        # number of messages the phone sends before its CNXN cannot extend it.
        ends = time.monotonic() + self._io_timeout
        while True:
            try:
                msg = self._recv(max(ends - time.monotonic(), 0.001))
            except LinkTimeout as exc:
                if offered_key:
                    raise AuthTimedOut(str(exc)) from exc
                raise LinkTimeout(f"no handshake within {self._io_timeout:g} s") from exc
            except LinkClosed as exc:
                if offered_key:
                    raise AuthRefused(str(exc)) from exc
                if self.in_tls:
                    raise TlsRefused(str(exc)) from exc
                raise
            if msg.command == wire.A_CNXN:
                return self._accept_banner(msg)
            if msg.command == wire.A_STLS and not self.in_tls:
                if start_tls is None:
                    raise LinkClosed("the phone asks for TLS, which this connection cannot do")
                self._send(wire.A_STLS, wire.A_STLS_VERSION, 0)
                self._pipe = start_tls(self._pipe)
                self.in_tls = True
                continue
            if msg.command != wire.A_AUTH or msg.arg0 != wire.AUTH_TOKEN:
                continue  # anything before CNXN must be ignored (protocol.md)
            if untried:
                self._send(wire.A_AUTH, wire.AUTH_SIGNATURE, 0, untried.pop(0).Sign(msg.data))
            elif not offered_key and signers:
                public = signers[0].GetPublicKey()
                public_bytes = public.encode() if isinstance(public, str) else bytes(public)
                on_prompt()
                self._send(wire.A_AUTH, wire.AUTH_RSAPUBLICKEY, 0, public_bytes + b"\0")
                offered_key = True
                ends = time.monotonic() + auth_timeout
            else:
                raise AuthRefused("the phone rejected every key")

    def _accept_banner(self, msg: Message) -> DeviceBanner:
        _kind, props = wire.parse_banner(msg.data)
        features = frozenset(f for f in props.pop("features", "").split(",") if f)
        self.maxdata = min(msg.arg1, wire.MAX_PAYLOAD)
        self._payload_limit = max(self.maxdata, wire.MAX_PAYLOAD_V1)
        self._version = min(msg.arg0, wire.A_VERSION)
        self.banner = DeviceBanner(msg.arg0, self.maxdata, props, features)
        threading.Thread(target=self._read_all, name="adbvoice-link", daemon=True).start()
        return self.banner

    # --- streams ---------------------------------------------------------------

    def open(self, service: str, *, background: bool = False) -> AdbStream:
        """Send OPEN and return at once: the OKAY is awaited lazily, so several opens
        (and the first requests, queued) share one round trip.

        A `background` stream's data is acknowledged only once it has all been read, not
        as it arrives: the phone then gathers the output it makes meanwhile into one
        write. The phone's hashes, a line per file, took a thousand WRTEs and OKAYs for
        2,000 notes otherwise, work for the phone while it sends the notes themselves."""
        with self._lock:
            stream = AdbStream(self, self._next_id, service, background=background)
            self._next_id += 1
            self._streams[stream.local_id] = stream
            self._send(wire.A_OPEN, stream.local_id, 0, service.encode("utf-8", "surrogateescape") + b"\0")
        return stream

    # The methods below run with self._lock held.

    def _wait(self, since: float, stream: AdbStream) -> None:
        """Wait for the reader thread to take a message; LinkTimeout when the phone has
        sent nothing on `stream` for the I/O timeout (counted from `since` at the
        earliest): messages on other or unknown streams do not count, so they cannot keep
        a stalled request alive. DeadlinePassed once the request's deadline has."""
        if self._ended is not None:
            raise type(self._ended)(str(self._ended))
        left = max(stream.last_heard, since) + self._io_timeout - time.monotonic()
        if left <= 0:
            raise LinkTimeout(f"no answer from the phone for {self._io_timeout:g} s")
        deadline_left = self.deadline.remaining()
        self._lock.wait(left if deadline_left is None else min(left, deadline_left))

    def _flush(self, stream: AdbStream) -> None:
        if stream.can_write and stream._outbox and not stream.peer_closed:
            chunk = bytes(stream._outbox[: self.maxdata])
            del stream._outbox[: self.maxdata]
            stream.can_write = False
            self._send(wire.A_WRTE, stream.local_id, stream.remote_id, chunk)

    def _settle_okay(self, stream: AdbStream) -> None:
        unread_allowed = 0 if stream.background else self.READ_AHEAD - 1
        if stream._okay_owed and stream._unread <= unread_allowed and not stream.peer_closed:
            stream._okay_owed = False
            self._send(wire.A_OKAY, stream.local_id, stream.remote_id)

    def _close_stream(self, stream: AdbStream) -> None:
        if self._streams.pop(stream.local_id, None) is None:
            return
        if stream.remote_id and not stream.peer_closed and self._ended is None:
            self._send(wire.A_CLSE, stream.local_id, stream.remote_id)
        stream.peer_closed = True

    # --- the reader thread ------------------------------------------------------

    def _read_all(self) -> None:
        try:
            while True:
                msg = self._recv(None)
                with self._lock:
                    self._take(msg)
                    self._lock.notify_all()
        except LinkClosed as exc:
            ended = exc
        except Exception as exc:  # noqa: BLE001 - a reader that died silently would hang every read
            ended = LinkClosed(f"reading from the phone failed: {exc!r}")
        with self._lock:
            self._ended = ended
            self._lock.notify_all()

    def _take(self, msg: Message) -> None:
        """Hand one message to its stream."""
        if msg.command == wire.A_CNXN:
            raise LinkClosed("adbd restarted on the phone")
        stream = self._streams.get(msg.arg1)
        if stream is None:
            return  # for a stream we already closed: ignore, as protocol.md says
        stream.last_heard = time.monotonic()
        if msg.command == wire.A_OKAY:
            stream.remote_id = msg.arg0
            stream.can_write = True
            self._flush(stream)
        elif msg.command == wire.A_WRTE:
            if stream._okay_owed:
                # One WRTE per stream until our OKAY (protocol.md): a phone that sends on
                # regardless would grow the inbox without bound.
                raise SentTooMuch(f"the phone ignored flow control on its {stream.service.split(':')[0]} stream")
            if msg.data:
                stream._inbox.append(memoryview(msg.data))
                stream._unread += len(msg.data)
            stream._okay_owed = True
            self._settle_okay(stream)
        elif msg.command == wire.A_CLSE:
            stream.refused = stream.remote_id == 0
            stream.peer_closed = True
            del self._streams[stream.local_id]

    # --- messages --------------------------------------------------------------

    def _send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self._pipe.send(wire.pack_header(command, arg0, arg1, data, version=self._version), data)

    def _recv(self, timeout: float | None) -> Message:
        header = self._pipe.recv_exact(wire.HEADER.size, timeout)
        try:
            command, arg0, arg1, length, _check = wire.unpack_header(header)
        except wire.WireError as exc:
            raise LinkClosed(str(exc)) from exc
        if length > self._payload_limit:
            raise MessageTooLong(
                f"the phone announced a {wire.COMMAND_NAMES[command]} of {length:,} bytes, "
                f"more than the {self._payload_limit:,} the link allows"
            )
        data = self._pipe.recv_exact(length, timeout) if length else b""
        return Message(command, arg0, arg1, data)

    def close(self) -> None:
        self._pipe.close()
