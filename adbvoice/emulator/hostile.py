"""A hostile phone: what a stranger who took the phone's Wi-Fi address could send.

`HostilePhone` stands between the host and an EmulatedPhone, speaking as the phone. It
passes every message on unchanged until the mode a test switches on takes over: a header
claiming gigabytes, a handshake sent a byte at a time, a shell answer that never ends
(with or without waiting for the host's OKAYs), a shell answer trickled out a byte per
message, or chatter on streams that do not exist while the real answer never comes.
Each mode counts in `fired` when it fires, as the fault knobs in faults.py do.

It works on messages, not on the phone's insides, so the phone itself stays faithful to
adbd and every attack goes through the host's real network code.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from dataclasses import dataclass

from adbvoice.phone import wire

HUGE_LENGTH = 0xF0000000  # what the header that cost 3.97 GB claimed
BEFORE_CNXN = "before_cnxn"
AFTER_CNXN = "after_cnxn"


@dataclass(frozen=True)
class Hostility:
    """What the phone does to the host (each field off by default).

    huge_header: BEFORE_CNXN answers the host's CNXN with a CNXN header claiming
        HUGE_LENGTH bytes; AFTER_CNXN sends a WRTE header claiming as much right after the
        real handshake. Then nothing more. Fires once.
    handshake_trickle_s: the phone's handshake goes out one byte every this many seconds.
    endless_shell: every shell stream answers with stdout that never ends, a full message
        at a time, each after the host's OKAY of the one before.
    ignore_flow_control: with endless_shell, the messages go without waiting for OKAYs.
    trickle_s: every shell stream's real answer goes out one byte per WRTE, one every
        this many seconds, each after the host's OKAY: progress, but never the end.
    chatter_s: shell streams never answer, while an OKAY for a stream that does not exist
        goes to the host every this many seconds.
    """

    huge_header: str | None = None
    handshake_trickle_s: float | None = None
    endless_shell: bool = False
    ignore_flow_control: bool = False
    trickle_s: float | None = None
    chatter_s: float | None = None

    @property
    def takes_shells(self) -> bool:
        return self.endless_shell or self.trickle_s is not None or self.chatter_s is not None


class HostilePhone:
    """`with HostilePhone(phone, Hostility(...)) as hostile:` listens on `hostile.address`."""

    def __init__(self, phone, hostility: Hostility) -> None:  # noqa: ANN001 - an EmulatedPhone, started
        self.phone = phone
        self.hostility = hostility
        self.fired: Counter[str] = Counter()
        self.bytes_sent = 0  # by the hostile modes, to the host
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._relays: list[_Relay] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> HostilePhone:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._listener.close()
        for relay in list(self._relays):
            relay.close()
        self._thread.join(5)

    def count(self, what: str) -> None:
        with self._lock:
            self.fired[what] += 1

    def sent(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_sent += nbytes

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                host, _ = self._listener.accept()
            except OSError:
                return
            host_port = self.phone.address.rsplit(":", 1)
            relay = _Relay(self, host, socket.create_connection((host_port[0], int(host_port[1]))))
            self._relays.append(relay)
            relay.start()


@dataclass
class _Taken:
    """A shell stream the hostile mode answers instead of the phone."""

    service: str
    host_id: int  # the host's local id
    phone_id: int  # the phone's local id (ours, as the host sees it)
    acked: threading.Event
    pending: bytearray
    phone_closed: bool = False
    host_closed: bool = False


class _Relay:
    """One host connection and its twin to the real phone."""

    def __init__(self, owner: HostilePhone, host: socket.socket, phone: socket.socket) -> None:
        self.owner = owner
        self.mode = owner.hostility
        self.host = host
        self.phone = phone
        self.host.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._host_lock = threading.Lock()
        self._phone_lock = threading.Lock()
        self._services: dict[int, str] = {}  # host id -> service it OPENed
        self._taken: dict[int, _Taken] = {}  # host id -> stream
        self._maxdata = wire.MAX_PAYLOAD_V1
        self._muted = False  # a huge header went out: nothing follows it
        self._closed = threading.Event()

    def start(self) -> None:
        for target, name in ((self._from_host, "hostile-host"), (self._from_phone, "hostile-phone")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        for sock in (self.host, self.phone):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    # --- the wire ---------------------------------------------------------------------

    def _read(self, sock: socket.socket) -> tuple[int, int, int, bytes] | None:
        header = _recv(sock, wire.HEADER.size)
        if header is None:
            return None
        command, arg0, arg1, length, _check, _magic = wire.HEADER.unpack(header)
        data = _recv(sock, length) if length else b""
        return None if data is None else (command, arg0, arg1, data)

    def _to_host(self, raw: bytes) -> None:
        if self._muted:
            return
        with self._host_lock:
            try:
                self.host.sendall(raw)
            except OSError:
                self._closed.set()

    def _to_phone(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        with self._phone_lock:
            try:
                self.phone.sendall(wire.pack_message(command, arg0, arg1, data))
            except OSError:
                self._closed.set()

    def _message_to_host(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self._to_host(wire.pack_message(command, arg0, arg1, data))

    # --- host -> phone ------------------------------------------------------------------

    def _from_host(self) -> None:
        while (msg := self._read(self.host)) is not None:
            command, arg0, arg1, data = msg
            if command == wire.A_CNXN and self.mode.huge_header == BEFORE_CNXN:
                self._huge(wire.A_CNXN)
                continue
            taken = self._taken.get(arg0)
            if taken is not None and command == wire.A_OKAY:
                taken.acked.set()  # our WRTE is acknowledged; the phone's were, by us
                continue
            if taken is not None and command == wire.A_CLSE:
                taken.host_closed = True
                taken.acked.set()
            if command == wire.A_OPEN:
                self._services[arg0] = data.rstrip(b"\0").decode("utf-8", "replace")
            self._to_phone(command, arg0, arg1, data)
        self.close()

    # --- phone -> host ------------------------------------------------------------------

    def _from_phone(self) -> None:
        while (msg := self._read(self.phone)) is not None:
            command, arg0, arg1, data = msg
            raw = wire.pack_message(command, arg0, arg1, data)
            if command == wire.A_CNXN:
                self._maxdata = min(arg1, wire.MAX_PAYLOAD)
                self._handshake(raw)
                if self.mode.huge_header == AFTER_CNXN:
                    self._huge(wire.A_WRTE)
                elif self.mode.chatter_s is not None:
                    threading.Thread(target=self._chatter, name="hostile-chatter", daemon=True).start()
                continue
            if command == wire.A_AUTH and self.mode.handshake_trickle_s is not None:
                self._handshake(raw)
                continue
            taken = self._taken.get(arg1)
            if command == wire.A_OKAY and taken is None and self._takes(arg1):
                taken = _Taken(self._services[arg1], arg1, arg0, threading.Event(), bytearray())
                self._taken[arg1] = taken
                self._to_host(raw)
                threading.Thread(target=self._answer, args=(taken,), name="hostile-answer", daemon=True).start()
                continue
            if taken is not None and command == wire.A_WRTE:
                taken.pending += data
                self._to_phone(wire.A_OKAY, taken.host_id, taken.phone_id)  # we take it all
                continue
            if taken is not None and command == wire.A_CLSE:
                taken.phone_closed = True
                continue
            self._to_host(raw)
        self.close()

    def _takes(self, host_id: int) -> bool:
        service = self._services.get(host_id, "")
        return self.mode.takes_shells and service.startswith(("shell", "exec:"))

    def _handshake(self, raw: bytes) -> None:
        if self.mode.handshake_trickle_s is None:
            self._to_host(raw)
            return
        self.owner.count("handshake_trickle")
        for byte in raw:
            if self._closed.wait(self.mode.handshake_trickle_s):
                return
            self._to_host(bytes([byte]))

    def _huge(self, command: int) -> None:
        header = wire.HEADER.pack(command, 1, 1, HUGE_LENGTH, 0, command ^ 0xFFFFFFFF)
        self._to_host(header + b"\0" * 64)
        self._muted = True
        self.owner.count("huge_header")

    # --- the hostile answers --------------------------------------------------------------

    def _answer(self, taken: _Taken) -> None:
        if self.mode.endless_shell:
            self._endless(taken)
        elif self.mode.trickle_s is not None:
            self._trickle(taken)

    def _endless(self, taken: _Taken) -> None:
        """Stdout that never ends, in the stream's own framing (shell v2 packets, or raw)."""
        self.owner.count("endless_shell")
        if self.mode.ignore_flow_control:
            self.owner.count("ignore_flow_control")
        v2 = taken.service.startswith("shell,v2")
        room = self._maxdata - (wire.SHELL_HEADER.size if v2 else 0)
        body = (wire.SHELL_HEADER.pack(wire.SHELL_STDOUT, room) if v2 else b"") + b"y\n" * (room // 2) + b"y" * (room % 2)
        message = wire.pack_message(wire.A_WRTE, taken.phone_id, taken.host_id, body)
        while not (self._closed.is_set() or taken.host_closed):
            if not self.mode.ignore_flow_control:
                taken.acked.clear()
            self._to_host(message)
            self.owner.sent(len(body))
            if not self.mode.ignore_flow_control and not taken.acked.wait(30):
                return

    def _trickle(self, taken: _Taken) -> None:
        """The real answer, one byte per WRTE, each after the host's OKAY of the one before."""
        self.owner.count("trickle")
        while not (self._closed.is_set() or taken.host_closed):
            if not taken.pending:
                if taken.phone_closed:
                    self._message_to_host(wire.A_CLSE, taken.phone_id, taken.host_id)
                    return
                self._closed.wait(0.01)
                continue
            byte = bytes(taken.pending[:1])
            del taken.pending[:1]
            taken.acked.clear()
            self._message_to_host(wire.A_WRTE, taken.phone_id, taken.host_id, byte)
            self.owner.sent(1)
            if not taken.acked.wait(30) or self._closed.wait(self.mode.trickle_s):
                return

    def _chatter(self) -> None:
        """OKAYs for a stream the host never opened, while shell streams get no answer."""
        self.owner.count("chatter")
        while not self._closed.wait(self.mode.chatter_s):
            self._message_to_host(wire.A_OKAY, 0x7FFF0001, 0x7FFF0002)
            self.owner.sent(wire.HEADER.size)


def _recv(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        try:
            part = sock.recv(size - len(data))
        except OSError:
            return None
        if not part:
            return None
        data += part
    return bytes(data)
