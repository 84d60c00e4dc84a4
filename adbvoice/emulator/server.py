"""One TCP connection from a host: adbd's transport (adb.cpp handle_packet) and its streams.

A reader thread parses messages off the socket and hands them, through the link's
host->device delay line, to `_dispatch`; everything the phone says goes through the
device->host delay line to a writer thread, so no thread but the writer ever blocks on
the socket. Each OPENed service runs in its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from adbvoice.emulator.auth import Gatekeeper
from adbvoice.emulator.faults import DROP, FaultState
from adbvoice.emulator.link import DelayLine, LinkProfile
from adbvoice.emulator.log import PacketLog, PacketRecord
from adbvoice.emulator.netsvc import ReverseListeners, connect_tcp, pump
from adbvoice.emulator.sandbox import SH, Sandbox
from adbvoice.emulator.services import Request, ReverseRequest, SyncRequest, TcpRequest, parse_service
from adbvoice.emulator.shell import report_error, run_shell
from adbvoice.emulator.storage import PhoneStorage
from adbvoice.emulator.stream import Stream
from adbvoice.emulator.sync import SyncService
from adbvoice.emulator.tls import TlsContext, TlsReader, TlsSession, TlsStartFailed
from adbvoice.phone import wire

logger = logging.getLogger(__name__)

_WRITER_EXIT_S = 5.0
_OPEN_TIMEOUT_S = 10.0  # how long a stream the phone opens waits for the host's answer

# A received message: command, arg0, arg1, data_check, payload.
_Packet = tuple[int, int, int, int, bytes]


@dataclass(frozen=True)
class _Plain:
    """Bytes for the wire as they are, even once TLS is on (the TLS handshake's own)."""

    data: bytes


@dataclass(frozen=True)
class PhoneParts:
    """What a connection uses of its phone."""

    banner: bytes
    log: PacketLog
    storage: PhoneStorage
    faults: FaultState
    gatekeeper: Gatekeeper
    link: LinkProfile
    tls: TlsContext | None  # a Wireless-debugging port: TLS only, judged by the trusted keys
    sandbox: Sandbox | None
    next_stream_id: Callable[[], int]
    violation: Callable[[str], None]
    closed: Callable[[Connection], None]


class Connection:
    """The device side of one transport."""

    def __init__(self, phone: PhoneParts, sock: socket.socket, conn_id: int) -> None:
        self.phone = phone
        self.id = conn_id
        self._sock = sock
        # Until the host's CNXN says otherwise (transport.h, atransport()).
        self.version = wire.A_VERSION_MIN
        self.max_payload = wire.MAX_PAYLOAD
        self._cnxn_seen = False
        self._online = False
        self._token: bytes | None = None
        self._lock = threading.Lock()
        self._opening = threading.Lock()  # one OPEN answered, or sent, at a time
        self._streams: dict[int, Stream] = {}
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self._dead = False
        self._silent = False  # a stall or drop fault fired: nothing more goes out
        self._tls: TlsSession | None = None  # once the handshake is done: everything is sealed
        name = f"adbd-conn{conn_id}"
        self._out: DelayLine[bytes | _Plain | None] = DelayLine(phone.link, self._write, name + "-out")
        self._in: DelayLine[_Packet] | None = (
            DelayLine(phone.link, self._dispatch, name + "-in") if phone.link.shaped else None
        )
        self._reader = threading.Thread(target=self._read_loop, name=name + "-read", daemon=True)
        self._reverse = (
            ReverseListeners(phone.sandbox.namespaces, self.open_to_host) if phone.sandbox is not None else None
        )

    def start(self) -> None:
        self._reader.start()

    @property
    def finished(self) -> bool:
        """Closed, and its reader has let go of the socket."""
        return self._dead and not self._reader.is_alive()

    # -- the wire ----------------------------------------------------------------------

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        """Queue one message to the host (the checksum is always filled in)."""
        if self._dead or self._silent:
            return
        self.phone.log.append(
            PacketRecord(time.monotonic(), self.id, "device", wire.COMMAND_NAMES[command],
                         arg0, arg1, len(data))
        )
        message = wire.pack_message(command, arg0, arg1, data, version=self.version)
        self._out.put(message, len(message))

    def _write(self, item: bytes | _Plain | None) -> None:
        """The writer thread: the only one that writes to the socket, and so the only one
        that seals messages once TLS is on (in the order they leave)."""
        if item is None:  # the drop fault's marker: everything before it is out
            self.close()
            return
        try:
            if isinstance(item, _Plain):
                self._sock.sendall(item.data)
            elif self._tls is not None:
                self._sock.sendall(self._tls.seal(item))
            else:
                self._sock.sendall(item)
        except OSError:
            self.close()

    def _read_loop(self) -> None:
        reader = self._sock.makefile("rb", buffering=256 * 1024)
        try:
            while True:
                header = reader.read(wire.HEADER.size)
                if len(header) < wire.HEADER.size:
                    break
                try:
                    command, arg0, arg1, length, check = wire.unpack_header(header)
                except wire.WireError as e:
                    self._violation(str(e))
                    break
                if length > self.max_payload:
                    # check_header (transport.cpp): longer than maxdata is fatal.
                    self._violation(f"message of {length} bytes exceeds maxdata {self.max_payload}")
                    break
                data = reader.read(length) if length else b""
                if len(data) < length:
                    break
                packet = (command, arg0, arg1, check, data)
                if self._in is not None:
                    self._in.put(packet, wire.HEADER.size + length)
                else:
                    self._dispatch(packet)
                if command == wire.A_CNXN and self.phone.tls is not None and self._tls is None:
                    # The CNXN brings our STLS; the host's answer is read here, before any
                    # other header, since TLS bytes may come before it.
                    tls_reader = self._start_tls(reader)
                    if tls_reader is None:
                        break
                    reader = tls_reader
        except OSError:
            pass
        finally:
            self.close()
            # The writer may be inside sendall(): let it fail on the shut-down socket
            # before the descriptor is closed and its number reused.
            self._out.join(_WRITER_EXIT_S)
            reader.close()
            self._sock.close()

    def _start_tls(self, reader) -> TlsReader | None:  # noqa: ANN001 - the socket's BufferedReader
        """The host's STLS and the handshake, in whichever order adb sends them, then CNXN
        inside TLS (adbd_auth_tls_handshake). None when the host is refused or gave up: a
        refused host gets TLS's alert before the connection closes."""
        assert self.phone.tls is not None

        def on_stls(stls: wire.Message) -> None:
            self.phone.log.append(PacketRecord(time.monotonic(), self.id, "host", "STLS", stls.arg0, stls.arg1, 0))

        session = TlsSession(self.phone.tls)
        try:
            shook = session.handshake(reader, lambda out: self._out.put(_Plain(out), len(out)), on_stls)
        except TlsStartFailed as exc:
            self._violation(str(exc))
            return None
        if not shook:
            self._out.put(None, 0)  # close once the alert is out
            self._out.join(_WRITER_EXIT_S)
            return None
        self._tls = session
        self._go_online()
        return TlsReader(reader, session)

    def close(self) -> None:
        """Drop the TCP connection and every stream on it (idempotent)."""
        with self._lock:
            if self._dead:
                return
            self._dead = True
            streams = list(self._streams.values())
            self._streams.clear()
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        with contextlib.suppress(OSError):  # already gone
            self._sock.shutdown(socket.SHUT_RDWR)
        self._out.close()
        if self._in is not None:
            self._in.close()
        for stream in streams:
            stream.abort()
        if self._reverse is not None:
            self._reverse.close()  # adb reverse's listeners belong to their transport
        self.phone.closed(self)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in [self._reader, *threads]:
            if thread is not threading.current_thread() and thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._out.join(max(0.0, deadline - time.monotonic()))
        if self._in is not None:
            self._in.join(max(0.0, deadline - time.monotonic()))

    def break_link(self, action: str) -> None:
        """A drop or stall fault: after what is already queued, close the TCP connection
        (drop) or say nothing more and ignore the host (stall)."""
        self._silent = True
        if action == DROP:
            self._out.put(None, 0)

    def _violation(self, text: str) -> None:
        self.phone.violation(f"connection {self.id}: {text}")
        self.close()

    # -- messages from the host (adb.cpp, handle_packet) --------------------------------

    def _dispatch(self, packet: _Packet) -> None:
        if self._dead or self._silent:
            return
        command, arg0, arg1, check, data = packet
        name = wire.COMMAND_NAMES[command]
        service = data.rstrip(b"\0").decode("utf-8", "replace") if command == wire.A_OPEN else None
        self.phone.log.append(
            PacketRecord(time.monotonic(), self.id, "host", name, arg0, arg1, len(data), service)
        )
        # Only a host that negotiated the legacy version is held to checksums. The CNXN
        # itself is not checked: a host reconnecting on a transport that already agreed
        # to skip them sends 0 (adb's transport.cpp, send_packet), and adbd accepts it.
        if (
            self._cnxn_seen
            and self.version < wire.A_VERSION_SKIP_CHECKSUM
            and wire.payload_checksum(data) != check
        ):
            self._violation(f"{name} payload checksum mismatch")
            return
        if command == wire.A_CNXN:
            self._on_connect(arg0, arg1)
        elif command == wire.A_STLS and self._tls is not None:
            return  # the host's answer to our STLS, sent by adb after the handshake, inside TLS
        elif command in (wire.A_SYNC, wire.A_STLS):
            # SYNC was never valid on the wire; STLS answers an STLS we did not send.
            self._violation(f"unexpected {name}")
        elif not self._cnxn_seen:
            return  # protocol.md: messages before CONNECT are ignored
        elif command == wire.A_AUTH:
            self._on_auth(arg0, data)
        elif not self._online:
            return  # adbd ignores streams until the transport is online
        elif command == wire.A_OPEN:
            self._on_open(arg0, arg1, data)
        elif command == wire.A_OKAY:
            self._on_okay(arg0, arg1, data)
        elif command == wire.A_CLSE:
            self._on_close(arg0, arg1)
        elif command == wire.A_WRTE:
            self._on_write(arg0, arg1, data)

    def _on_connect(self, version: int, maxdata: int) -> None:
        # protocol.md: an unknown version or too small a maxdata closes the connection.
        if version < wire.A_VERSION_MIN or maxdata < wire.MAX_PAYLOAD_V1:
            self._violation(f"CNXN with version 0x{version:08x}, maxdata {maxdata}")
            return
        if self._online:  # a second CNXN restarts the transport (handle_offline)
            with self._lock:
                streams = list(self._streams.values())
                self._streams.clear()
            for stream in streams:
                stream.abort()
            self._online = False
        self._cnxn_seen = True
        self.version = min(version, wire.A_VERSION)
        self.max_payload = min(maxdata, wire.MAX_PAYLOAD)
        if self.phone.tls is not None:
            if self._tls is None:
                self.send(wire.A_STLS, wire.A_STLS_VERSION, 0)  # the reader thread takes it on
            else:
                self._go_online()
        elif self.phone.gatekeeper.required:
            self._send_token()
        else:
            self._go_online()

    def _go_online(self) -> None:
        """send_connect (adb.cpp): our version is always A_VERSION; the transport uses the
        smaller of the two, and maxdata is what we agreed."""
        if self._dead or self._online:
            return
        self._online = True
        self._token = None
        self.send(wire.A_CNXN, wire.A_VERSION, self.max_payload, self.phone.banner)

    def _send_token(self) -> None:
        self._token = os.urandom(wire.AUTH_TOKEN_SIZE)
        self.send(wire.A_AUTH, wire.AUTH_TOKEN, 0, self._token)

    def _on_auth(self, kind: int, data: bytes) -> None:
        if self._token is None:
            return  # no token outstanding: nothing to answer
        if kind == wire.AUTH_SIGNATURE:
            if self.phone.gatekeeper.check_signature(self._token, data):
                self._go_online()
            else:
                self._send_token()
        elif kind == wire.AUTH_RSAPUBLICKEY:
            self._on_public_key(data.split(b"\0", 1)[0].decode("utf-8", "replace"))
        else:
            self._violation(f"AUTH of unknown type {kind}")

    def _on_public_key(self, key: str) -> None:
        """The host offers its key: the phone shows "Allow USB debugging?"."""
        delay = self.phone.gatekeeper.offer(key)
        if delay is None:
            self.close()  # the user tapped "Deny"
        elif delay == 0:
            self._go_online()
        elif delay != float("inf"):
            timer = threading.Timer(delay, self._allow, args=(key,))
            timer.daemon = True
            with self._lock:
                if self._dead:
                    return
                self._timers.append(timer)
            timer.start()

    def _allow(self, key: str) -> None:
        if self._dead or self._online:
            return
        self.phone.gatekeeper.allow(key)
        self._go_online()

    def _on_open(self, remote_id: int, send_bytes: int, data: bytes) -> None:
        if remote_id == 0:
            return
        request = parse_service(data)
        # A nonzero arg1 asks for delayed acks, which this phone does not offer.
        if send_bytes != 0 or request is None or (
            isinstance(request, (TcpRequest, ReverseRequest)) and self.phone.sandbox is None
        ):
            self.send(wire.A_CLSE, 0, remote_id)
            return
        service = data.rstrip(b"\0").decode("utf-8", "replace")
        self._start_thread(f"adbd-{service[:20]}", self._accept_open, remote_id, service, request)

    def _accept_open(self, remote_id: int, service: str, request: Request) -> None:
        """Create the service, then answer the OPEN: OKAY, or CLSE when it cannot be
        created (adbd's service_to_fd failing, e.g. nothing listens on a tcp: port)."""
        sock = None
        # adbd creates a service and answers its OPEN in one turn of its event loop,
        # before it looks at anything else, such as the connection a reverse listener
        # accepts from this very connect(): that one's OPEN to the host comes after.
        with self._opening:
            if isinstance(request, TcpRequest):
                assert self.phone.sandbox is not None
                sock = connect_tcp(self.phone.sandbox.namespaces, request.destination)
                if sock is None:
                    self.send(wire.A_CLSE, 0, remote_id)
                    return
            stream = Stream(self, self.phone.next_stream_id(), remote_id, service)
            with self._lock:
                dead = self._dead
                if not dead:
                    self._streams[stream.local_id] = stream
            if dead:
                if sock is not None:
                    sock.close()
                return
            self.send(wire.A_OKAY, stream.local_id, remote_id)
        if sock is not None:
            pump(stream, sock)
        else:
            self._serve(stream, request)

    def open_to_host(self, destination: bytes) -> Stream | None:
        """A stream the phone opens (an `adb reverse` connection): OPEN, then the host's
        OKAY makes it live; None if the host refuses or the transport goes."""
        stream = Stream(self, self.phone.next_stream_id(), 0, destination.decode("utf-8", "replace"))
        with self._opening:
            with self._lock:
                if self._dead:
                    return None
                self._streams[stream.local_id] = stream
            self.send(wire.A_OPEN, stream.local_id, 0, destination + b"\0")
        if stream.wait_accepted(_OPEN_TIMEOUT_S):
            return stream
        stream.abort()
        return None

    def _start_thread(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _serve(self, stream: Stream, request: Request) -> None:
        try:
            if isinstance(request, SyncRequest):
                SyncService(stream, self.phone.storage, self.phone.faults, self.break_link).run()
            elif isinstance(request, ReverseRequest):
                assert self._reverse is not None
                self._reverse.serve(stream, request.command)
            elif self.phone.sandbox is None:
                # What adbd reports when /system/bin/sh cannot be executed.
                report_error(stream, request.protocol, f"exec '{SH}' failed: No such file or directory")
            else:
                assert not isinstance(request, TcpRequest)
                run_shell(stream, self.phone.sandbox, request)
        except Exception:
            logger.exception("service %r failed", stream.service)
            stream.close()

    def _find(self, local_id: int, remote_id: int) -> Stream | None:
        with self._lock:
            stream = self._streams.get(local_id)
        if stream is None or (remote_id != 0 and stream.remote_id != remote_id):
            return None
        return stream

    def _on_okay(self, remote_id: int, local_id: int, data: bytes) -> None:
        if remote_id == 0 or local_id == 0:
            return
        stream = self._find(local_id, 0)
        if stream is None:
            # The stream is gone; tell the host so it closes its end (adb.cpp, A_OKAY).
            self.send(wire.A_CLSE, local_id, remote_id)
        elif stream.remote_id == 0:
            stream.host_accepted(remote_id)  # the answer to an OPEN of ours
        elif stream.remote_id == remote_id and not data:
            stream.host_okayed()

    def _on_close(self, remote_id: int, local_id: int) -> None:
        if local_id == 0:
            return
        stream = self._find(local_id, remote_id)
        if stream is not None and stream.remote_id == 0:
            stream.abort()  # the host refused an OPEN of ours: nothing to answer
        elif stream is not None:
            stream.close()

    def _on_write(self, remote_id: int, local_id: int, data: bytes) -> None:
        if remote_id == 0 or local_id == 0:
            return
        stream = self._find(local_id, remote_id)
        if stream is not None and not stream.host_wrote(data):
            self._violation(f"second WRTE on stream {local_id} before our OKAY")

    def forget(self, stream: Stream) -> None:
        with self._lock:
            if self._streams.get(stream.local_id) is stream:
                del self._streams[stream.local_id]
