"""Google's adb server as a transport, for phones it already holds.

While an adb server (Android Studio's, or `adb start-server`) owns a USB phone, nobody
else can claim its interface (LIBUSB_ERROR_BUSY). The server's own "smart socket"
protocol (AOSP docs/dev/protocol.md, "smartsockets"; docs/dev/services.md) lets us use
it instead: each stream is one TCP connection to the server, switched to the phone with
`host:transport:SERIAL` and then to a service. After that the socket carries exactly what
an ADB stream would, so the sync and shell clients run over it unchanged.
"""

from __future__ import annotations

import os
import select
import socket
from dataclasses import dataclass

from adbvoice.phone.connection import Deadline, ExactReads, LinkClosed, LinkTimeout, ServiceRefused, StreamEnded

DEFAULT_SERVER_PORT = 5037


class ServerError(Exception):
    """The adb server answered FAIL."""


class ServerProtocolError(Exception):
    """What answered on the server's port broke the smart-socket protocol (a length that
    is not four hex digits): not an adb server, or a broken one."""


@dataclass(frozen=True)
class ServerDevice:
    serial: str
    state: str  # "device", "unauthorized", "offline", ...
    props: dict[str, str]  # product/model/device from `devices -l`


def server_port() -> int:
    """The port Google's adb uses: ANDROID_ADB_SERVER_PORT, else 5037."""
    value = os.environ.get("ANDROID_ADB_SERVER_PORT", "")
    return int(value) if value.isdigit() else DEFAULT_SERVER_PORT


def _connect(port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _request(sock: socket.socket, service: str) -> None:
    """Send one smart-socket request and require OKAY."""
    payload = service.encode("utf-8", "surrogateescape")
    sock.sendall(b"%04x" % len(payload) + payload)
    status = _recv_exact(sock, 4)
    if status == b"OKAY":
        return
    if status == b"FAIL":
        raise ServerError(_recv_exact(sock, _length(sock)).decode("utf-8", "replace"))
    raise LinkClosed(f"the adb server sent {status!r} where OKAY or FAIL belongs")


def _length(sock: socket.socket) -> int:
    """A smart-socket length: four hex digits (so at most 64 KiB follow)."""
    digits = _recv_exact(sock, 4)
    if not all(c in b"0123456789abcdefABCDEF" for c in digits):
        raise ServerProtocolError(f"a length that is not four hex digits: {digits!r}")
    return int(digits, 16)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            raise LinkClosed("the adb server closed the connection")
        data += part
    return bytes(data)


def query(port: int, service: str, timeout: float = 5.0) -> str:
    """A host service answering one length-prefixed string (host:devices-l, features...)."""
    with _connect(port, timeout) as sock:
        _request(sock, service)
        return _recv_exact(sock, _length(sock)).decode("utf-8", "replace")


def list_devices(port: int | None = None) -> list[ServerDevice] | None:
    """The phones a running adb server holds, or None when no server is listening;
    ServerProtocolError when what listens there is not speaking adb's protocol."""
    try:
        text = query(port or server_port(), "host:devices-l", timeout=2.0)
    except (OSError, LinkClosed, ServerError):
        return None
    devices = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        props = dict(w.split(":", 1) for w in words[2:] if ":" in w)
        devices.append(ServerDevice(words[0], words[1], props))
    return devices


class ServerStream(ExactReads):
    """One service on one phone, through the adb server: a plain socket after the switch."""

    def __init__(self, port: int, serial: str, service: str, io_timeout: float, deadline: Deadline) -> None:
        self.service = service
        self._deadline = deadline
        self._sock = _connect(port, io_timeout)
        try:
            _request(self._sock, f"host:transport:{serial}")
            _request(self._sock, service)
        except ServerError as exc:
            self._sock.close()
            raise ServiceRefused(f"the adb server refused {service.split(':')[0]!r}: {exc}") from exc
        except OSError as exc:
            self._sock.close()
            raise LinkClosed(f"adb server connection lost: {exc}") from exc
        self._sock.settimeout(io_timeout)
        self._timeout = io_timeout

    def write(self, data: bytes) -> None:
        """Each stream is a socket of its own: the server closing it means the phone ended
        the stream (a sync FAIL), not a lost phone."""
        try:
            self._sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise StreamEnded(f"the adb server closed the {self.service.split(':')[0]} stream") from exc
        except OSError as exc:
            raise LinkClosed(f"adb server connection lost: {exc}") from exc

    def readable_now(self) -> bool:
        return bool(select.select([self._sock], [], [], 0)[0])

    def read(self, limit: int) -> bytes:
        left = self._deadline.remaining()
        wait = self._timeout if left is None else min(self._timeout, left)
        if self._sock.gettimeout() != wait:
            self._sock.settimeout(wait)
        try:
            return self._sock.recv(limit)
        except socket.timeout as exc:
            self._deadline.remaining()  # DeadlinePassed when that is why
            raise LinkTimeout(f"no answer from the phone for {self._timeout:g} s") from exc
        except OSError as exc:
            raise LinkClosed(f"adb server connection lost: {exc}") from exc

    def close(self) -> None:
        self._sock.close()
