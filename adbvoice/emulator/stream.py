"""One ADB stream (an OPENed service) on the device side, with the protocol's flow control.

protocol.md: after a WRTE the sender waits for READY (OKAY) before the next one. We send
our OKAY for a host WRTE when the service takes its bytes, as adbd does when it has
handed them to the service's socket (sockets.cpp, local_socket_flush_incoming), so the
OKAY always precedes any answer on the stream. A host WRTE that arrives while the
previous one is still waiting for its OKAY breaks the rule; the connection is closed.

Service output is a byte stream, cut into WRTEs of at most the negotiated maxdata
whenever the host has acknowledged the previous one, so answers to pipelined requests
share WRTEs as they do when adbd's main loop reads the service socket.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

from adbvoice.phone import wire


class StreamClosed(Exception):
    """The stream is gone (closed by the host, or the connection died)."""


class StreamHost(Protocol):
    """What a stream needs from its connection."""

    max_payload: int

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None: ...

    def forget(self, stream: Stream) -> None: ...


class Stream:
    """The device end of one stream: `local_id` is ours, `remote_id` the host's."""

    def __init__(self, host: StreamHost, local_id: int, remote_id: int, service: str) -> None:
        self.host = host
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._cv = threading.Condition()
        self._inbox: deque[bytes] = deque()
        self._outbox = bytearray()
        self._awaiting_okay = False
        self._closed = False
        self._on_close: list[Callable[[], None]] = []

    # -- called by the connection, for messages from the host ---------------------

    def host_wrote(self, data: bytes) -> bool:
        """A WRTE from the host; False if it came before our OKAY of the previous one."""
        with self._cv:
            if self._closed:
                return True
            if self._inbox:
                return False
            self._inbox.append(data)
            self._cv.notify_all()
            return True

    def host_accepted(self, remote_id: int) -> None:
        """The host's OKAY to an OPEN of ours (a stream the phone opened, remote_id 0
        until now): the stream is its `remote_id` from here on."""
        with self._cv:
            self.remote_id = remote_id
            self._cv.notify_all()

    def wait_accepted(self, timeout: float) -> bool:
        """Wait for the host to accept our OPEN; False if it refused (CLSE) or said nothing."""
        with self._cv:
            self._cv.wait_for(lambda: self.remote_id != 0 or self._closed, timeout)
            return self.remote_id != 0 and not self._closed

    def host_okayed(self) -> None:
        with self._cv:
            self._awaiting_okay = False
            self._pump()
            self._cv.notify_all()

    def close(self) -> None:
        """Close now and say so with one CLSE. This is also the answer to the host's
        CLSE: adbd closing its local socket shuts down the peer, which sends A_CLSE
        (sockets.cpp, local_socket_close)."""
        if self._mark_closed():
            self.host.send(wire.A_CLSE, self.local_id, self.remote_id)

    def abort(self) -> None:
        """The connection is gone: wake everyone, send nothing."""
        self._mark_closed()

    # -- called by the service ----------------------------------------------------

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` (once) when the stream closes, e.g. to kill a process."""
        with self._cv:
            if not self._closed:
                self._on_close.append(callback)
                return
        callback()

    def has_input(self) -> bool:
        with self._cv:
            return bool(self._inbox)

    def read(self) -> bytes:
        """Everything the host has written and we have not taken yet; blocks while there
        is nothing. Taking it is what sends the OKAY. Raises StreamClosed once the stream
        is closed and what the host wrote before its CLSE has been taken: adbd hands a
        local socket what it received before closing it (sockets.cpp, local_socket_close
        defers while packets are queued)."""
        with self._cv:
            while not self._inbox and not self._closed:
                self._cv.wait()
            if not self._inbox:
                raise StreamClosed()
            data = b"".join(self._inbox)
            if not self._closed:
                for _ in range(len(self._inbox)):
                    self.host.send(wire.A_OKAY, self.local_id, self.remote_id)
            self._inbox.clear()
            return data

    def write(self, data: bytes) -> None:
        """Queue output; blocks while a full WRTE's worth is already waiting."""
        with self._cv:
            while len(self._outbox) >= self.host.max_payload and not self._closed:
                self._cv.wait()
            if self._closed:
                raise StreamClosed()
            self._outbox += data
            self._pump()

    def drain(self) -> None:
        """Wait until the host has acknowledged all output: only then is it surely in the
        host's hands. (Data merely sent can still be lost: once we close, the host's next
        OKAY draws a TCP reset, and a reset discards what the host's kernel had received
        but the host had not read yet.)"""
        with self._cv:
            while (self._outbox or self._awaiting_okay) and not self._closed:
                self._cv.wait()
            if self._closed:
                raise StreamClosed()

    def finish(self) -> None:
        """The service is done: once its last WRTE is acknowledged, send CLSE.

        adbd notices the service's EOF only when it reads the socket again, which it does
        after the host's OKAY for the last WRTE (sockets.cpp, local_socket_flush_outgoing).
        """
        with self._cv:
            while (self._outbox or self._awaiting_okay) and not self._closed:
                self._cv.wait()
        self.close()

    # -- internals -----------------------------------------------------------------

    def _pump(self) -> None:
        if self._awaiting_okay or not self._outbox or self._closed:
            return
        size = min(len(self._outbox), self.host.max_payload)
        chunk = bytes(self._outbox[:size])
        del self._outbox[:size]
        self._awaiting_okay = True
        self.host.send(wire.A_WRTE, self.local_id, self.remote_id, chunk)
        self._cv.notify_all()

    def _mark_closed(self) -> bool:
        with self._cv:
            if self._closed:
                return False
            self._closed = True
            callbacks, self._on_close = self._on_close, []
            self._cv.notify_all()
        self.host.forget(self)
        for callback in callbacks:
            callback()
        return True
