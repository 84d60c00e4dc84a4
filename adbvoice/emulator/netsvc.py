"""adbd's socket services: `tcp:PORT`, which `adb forward` opens, and `reverse:`, the
listeners `adb reverse` installs on the phone.

Both live in the phone's network namespace (namespaces.py): `tcp:12345` reaches what a
shell listens on there (`nc -l -p 12345`), and a reverse listener is a port of the phone,
whose connections adbd opens to the host as streams of its own (adb.cpp,
handle_forward_request; adb_listeners.cpp). Replies follow the device side of
handle_forward_request: one OKAY per success (the host adds its own), "FAIL" and a
length-prefixed reason otherwise, a length-prefixed port when tcp:0 was resolved.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from adbvoice.emulator.namespaces import PhoneNamespaces
from adbvoice.emulator.stream import Stream, StreamClosed

# Opens a stream to the host ("tcp:6655"); None when the host refuses it.
OpenToHost = Callable[[bytes], "Stream | None"]


def _protocol_string(text: str) -> bytes:
    data = text.encode()
    return b"%04x" % len(data) + data


def _fail(message: str) -> bytes:
    return b"FAIL" + _protocol_string(message)


def _tcp_port(spec: str) -> int | None:
    """The port of "tcp:PORT" (adbd's socket_spec; hosts other than this phone's own
    loopback are refused here, as this phone has no other network)."""
    kind, _, rest = spec.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "tcp" or host not in ("", "localhost", "127.0.0.1") or not port.isdigit():
        return None
    number = int(port)
    return number if number <= 65535 else None


def pump(stream: Stream, sock: socket.socket) -> None:
    """Carry bytes both ways between a stream and a TCP socket until either side closes.

    The socket's EOF ends the stream once the host has acknowledged what was sent
    (local_socket_close after flushing); the host's CLSE shuts the socket down."""

    def to_socket() -> None:
        try:
            while True:
                sock.sendall(stream.read())
        except (StreamClosed, OSError):
            pass
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    writer = threading.Thread(target=to_socket, name="adbd-tcp-out", daemon=True)
    writer.start()
    try:
        while data := sock.recv(stream.host.max_payload):
            stream.write(data)
        stream.finish()
    except (StreamClosed, OSError):
        stream.close()
    writer.join()
    sock.close()


def connect_tcp(namespaces: PhoneNamespaces, destination: bytes) -> socket.socket | None:
    """The socket for an OPEN of `tcp:...`, or None (adbd then refuses the OPEN)."""
    port = _tcp_port(destination.decode("utf-8", "replace"))
    if port is None:
        return None
    try:
        return namespaces.tcp_socket("connect", port)
    except OSError:
        return None


class ReverseListeners:
    """The listeners one transport installed with `adb reverse`; they go with it."""

    def __init__(self, namespaces: PhoneNamespaces, open_to_host: OpenToHost) -> None:
        self._namespaces = namespaces
        self._open_to_host = open_to_host
        self._lock = threading.Lock()
        # local spec -> (connect_to, listening socket)
        self._listeners: dict[str, tuple[str, socket.socket]] = {}

    def serve(self, stream: Stream, command: bytes) -> None:
        """One `reverse:` request: the reply, then the stream ends."""
        try:
            stream.write(self._handle(command.decode("utf-8", "replace")))
        except StreamClosed:
            return
        stream.finish()

    def _handle(self, command: str) -> bytes:
        if command == "list-forward":
            with self._lock:
                rows = [f"(reverse) {local} {to}\n" for local, (to, _) in self._listeners.items()]
            return _protocol_string("".join(rows))
        if command == "killforward-all":
            self.close()
            return b"OKAY"
        if command.startswith("killforward:"):
            local = command[len("killforward:"):]
            if not local or ";" in local:
                return _fail(f"bad killforward: {local}")
            with self._lock:
                entry = self._listeners.pop(local, None)
            if entry is None:
                return _fail(f"listener '{local}' not found")
            _close_listener(entry[1])
            return b"OKAY"
        if command.startswith("forward:"):
            spec = command[len("forward:"):]
            no_rebind = spec.startswith("norebind:")
            spec = spec.removeprefix("norebind:")
            pieces = spec.split(";")
            if len(pieces) != 2 or not pieces[0] or not pieces[1] or pieces[1].startswith("*"):
                return _fail(f"bad forward: {spec}")
            return self._install(pieces[0], pieces[1], no_rebind)
        return _fail("not a reverse forwarding command")

    def _install(self, local: str, connect_to: str, no_rebind: bool) -> bytes:
        with self._lock:
            if local in self._listeners:
                # install_listener: an existing listener is repurposed, unless norebind.
                if no_rebind:
                    return _fail("cannot rebind existing socket")
                self._listeners[local] = (connect_to, self._listeners[local][1])
                return b"OKAY"
        port = _tcp_port(local)
        if port is None:
            return _fail(f"cannot bind listener: unsupported socket spec '{local}'")
        try:
            listener = self._namespaces.tcp_socket("listen", port)
        except OSError as e:
            return _fail(f"cannot bind listener: {e}")
        resolved = listener.getsockname()[1]
        name = f"tcp:{resolved}"
        with self._lock:
            self._listeners[name] = (connect_to, listener)
        threading.Thread(target=self._accept, args=(name, listener), name="adbd-reverse", daemon=True).start()
        return b"OKAY" + (_protocol_string(str(resolved)) if port == 0 else b"")

    def _accept(self, name: str, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # removed, or the transport went
            with self._lock:
                entry = self._listeners.get(name)
            if entry is None:
                sock.close()
                return
            threading.Thread(target=self._connect, args=(entry[0], sock), name="adbd-reverse-conn",
                             daemon=True).start()

    def _connect(self, connect_to: str, sock: socket.socket) -> None:
        stream = self._open_to_host(connect_to.encode())
        if stream is None:
            sock.close()
            return
        pump(stream, sock)

    def close(self) -> None:
        with self._lock:
            listeners, self._listeners = self._listeners, {}
        for _, listener in listeners.values():
            _close_listener(listener)


def _close_listener(listener: socket.socket) -> None:
    """shutdown() first: it wakes the thread in accept(), which close() alone would not,
    and which would keep the port bound."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
