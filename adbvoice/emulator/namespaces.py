"""One set of namespaces per phone: every shell command, and every socket the phone opens
for `adb forward`/`adb reverse`, lives in the same pid, network, mount, IPC and UTS
namespaces, as every process on a phone shares one kernel.

A phone's processes see each other (`ps`, `kill` from one shell to another), and a port
one shell listens on (`nc -l -p 12345`) is the port adbd's `tcp:12345` reaches. The set
is held by one idle process started under bubblewrap when the phone starts; each command
enters it with util-linux's nsenter, which an unprivileged user may do in namespaces it
created, so no privilege is needed beyond what bwrap already uses.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence

_START_TIMEOUT_S = 20.0
_NAMESPACES = ("--user", "--mount", "--net", "--pid", "--ipc", "--uts")

# Run inside the namespaces by the system's python3 (under /usr, which the phone sees),
# for as long as the phone lives: for each request on stdin, a Unix socket ("connect
# PORT" or "listen PORT", one line), it makes a TCP socket there (connected to, or
# listening on, 127.0.0.1:PORT) and hands its descriptor back. A socket keeps the network
# namespace it was made in, so the emulator uses it as its own. One process for all
# requests keeps a connection as quick as adbd's own connect(), which the host expects
# to be answered before anything else happens on the port.
_SOCKET_MAKER = """
import socket
back = socket.socket(fileno=0)
lines = back.makefile("rb")
for line in lines:
    kind, port = line.decode().split()
    s = socket.socket()
    try:
        if kind == "connect":
            s.connect(("127.0.0.1", int(port)))
        else:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(port)))
            s.listen(16)
    except OSError as e:
        back.sendall(("error:" + (e.strerror or str(e))).encode())
    else:
        socket.send_fds(back, [b"ok"], [s.fileno()])
    s.close()
"""


class NamespaceError(Exception):
    """The phone's namespaces could not be set up."""


class PhoneNamespaces:
    """The namespace holder: `bwrap_argv` is bwrap with every mount of the phone, up to
    (not including) the command; `enter(argv)` is the command line that runs argv inside."""

    def __init__(self, bwrap_argv: Sequence[str | bytes], nsenter: str, python: str) -> None:
        self._bwrap_argv = list(bwrap_argv)
        self._nsenter = nsenter
        self._python = python
        self._holder: subprocess.Popen[bytes] | None = None
        self._target = 0
        self._keeper: threading.Thread | None = None
        self._maker: subprocess.Popen[bytes] | None = None
        self._maker_socket: socket.socket | None = None
        self._maker_lock = threading.Lock()

    def start(self) -> None:
        """Start the holder and find the process whose namespaces the commands enter.

        bwrap's --die-with-parent ties the holder to the thread that started it, so a
        thread of its own starts it and waits for it for as long as it lives."""
        started = threading.Event()
        failure: list[BaseException] = []

        def keep() -> None:
            try:
                self._holder = subprocess.Popen(
                    [*self._bwrap_argv, "/system/bin/sleep", "2147483647"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as e:
                failure.append(e)
                started.set()
                return
            started.set()
            self._holder.wait()

        self._keeper = threading.Thread(target=keep, name="adbd-namespaces", daemon=True)
        self._keeper.start()
        started.wait()
        if failure:
            raise NamespaceError(f"bwrap did not run: {failure[0]}")
        assert self._holder is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        # outer bwrap -> bwrap as PID 1 of the new pid namespace -> sleep: the leaf has
        # entered every namespace and the sandbox's root.
        while time.monotonic() < deadline:
            if self._holder.poll() is not None:
                assert self._holder.stderr is not None
                message = self._holder.stderr.read().decode("utf-8", "replace").strip()
                raise NamespaceError(f"bwrap failed ({self._holder.returncode}): {message}")
            leaf = _leaf(self._holder.pid)
            if leaf != self._holder.pid and _comm(leaf) == "sleep":
                self._target = leaf
                self._start_socket_maker()
                return
            time.sleep(0.01)
        self.close()
        raise NamespaceError("bwrap did not start its holder process in time")

    def enter(self, argv: Sequence[str | bytes]) -> list[str | bytes]:
        """nsenter into every namespace and the sandbox's root, keeping uid 2000."""
        return [
            self._nsenter, "--target", str(self._target), *_NAMESPACES,
            "--preserve-credentials", "--root", "--wd", "--", *argv,
        ]

    def _start_socket_maker(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self._maker = subprocess.Popen(
                self.enter([self._python, "-c", _SOCKET_MAKER]),
                stdin=theirs, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={"PATH": "/system/bin"},
            )
        self._maker_socket = ours

    def tcp_socket(self, kind: str, port: int) -> socket.socket:
        """A TCP socket of the phone's network: "connect"ed to its 127.0.0.1:PORT, or
        "listen"ing there. Raises OSError with the phone's reason."""
        with self._maker_lock:
            if self._maker_socket is None:
                raise OSError("the phone is stopped")
            self._maker_socket.sendall(f"{kind} {port}\n".encode())
            message, fds, _, _ = socket.recv_fds(self._maker_socket, 256, 1)
        if not fds:
            raise OSError(message.decode("utf-8", "replace").removeprefix("error:") or "the phone is stopped")
        return socket.socket(fileno=fds[0])

    def close(self) -> None:
        """End the holder; the kernel kills every process left in the pid namespace."""
        with self._maker_lock:
            if self._maker_socket is not None:
                self._maker_socket.close()
                self._maker_socket = None
        if self._holder is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._holder.pid, signal.SIGKILL)
            if self._keeper is not None:
                self._keeper.join(5)
            if self._holder.stderr is not None:
                self._holder.stderr.close()
            self._holder = None
        if self._maker is not None:
            self._maker.wait(5)  # gone with its pid namespace
            self._maker = None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _leaf(pid: int) -> int:
    while children := _children(pid):
        pid = children[0]
    return pid


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def child_of(pid: int, timeout: float = 2.0) -> int | None:
    """The first child of pid (nsenter's, which runs the command), waiting for it a moment."""
    deadline = time.monotonic() + timeout
    while True:
        children = _children(pid)
        if children:
            return children[0]
        if time.monotonic() > deadline or not os.path.exists(f"/proc/{pid}"):
            return None
        time.sleep(0.002)
