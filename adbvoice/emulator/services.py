"""Which service an OPEN asks for, parsed as adbd does (daemon/services.cpp).

`sync:`, `shell...:`, `exec:`, `abb:`/`abb_exec:`, `tcp:` and `reverse:` exist on this phone; any other
destination is refused with CLSE, as adbd does for a service it cannot create.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyncRequest:
    """`sync:` (anything after the colon is ignored, as by adbd)."""


@dataclass(frozen=True)
class TcpRequest:
    """`tcp:PORT`, a connection to the phone's own port (what `adb forward` opens)."""

    destination: bytes


@dataclass(frozen=True)
class ReverseRequest:
    """`reverse:COMMAND`, the listeners `adb reverse` manages (netsvc.py)."""

    command: bytes


@dataclass(frozen=True)
class ShellRequest:
    """A command for /system/bin/sh.

    command: None for an interactive login shell (an empty command).
    pty: run on a pseudo-terminal; raw_pty: with cfmakeraw applied (adbd does this when
        there is no shell protocol and no PTY was asked for, to keep output unmangled).
    protocol: shell protocol v2 packets (`shell,v2,...`).
    term: $TERM for the command, None to leave it unset (`exec:`).
    in_process: adbd runs it on a thread of its own (abb), with no pid to wait for, so the
        exit code it reports is always 1 (shell_service.cpp, WaitForExit).
    """

    command: bytes | None
    pty: bool
    raw_pty: bool
    protocol: bool
    term: str | None
    in_process: bool = False


Request = SyncRequest | ShellRequest | TcpRequest | ReverseRequest


def parse_service(destination: bytes) -> Request | None:
    """The service named by an OPEN's payload, or None if this phone has no such service."""
    # Hosts send the name NUL-terminated; adbd strips trailing NULs (adb.cpp, A_OPEN).
    name = destination.rstrip(b"\0")
    if name.startswith(b"sync:"):
        return SyncRequest()
    if name.startswith(b"exec:"):
        command = name[len(b"exec:"):]
        return ShellRequest(command or None, pty=True, raw_pty=True, protocol=False, term=None)
    if name.startswith(b"shell"):
        return _parse_shell(name[len(b"shell"):])
    if name.startswith((b"abb:", b"abb_exec:")):
        return _parse_abb(name)
    if name.startswith(b"tcp:"):
        return TcpRequest(name)
    if name.startswith(b"reverse:"):
        return ReverseRequest(name[len(b"reverse:"):])
    return None


def _parse_abb(name: bytes) -> ShellRequest:
    """`abb:ARG\0ARG...` (daemon/abb.cpp): adbd hands the arguments to the binder
    front end, cmd, run in its abb process; `abb:` speaks the shell protocol, `abb_exec:`
    none. Here cmd is /system/bin/cmd, and abb_exec's socketpair is a raw PTY, as for
    exec: (binary-safe alike)."""
    kind, _, args = name.partition(b":")
    quoted = b" ".join(b"'" + arg.replace(b"'", b"'\\''") + b"'" for arg in args.split(b"\0") if arg)
    command = b"exec /system/bin/cmd " + quoted
    if kind == b"abb":
        return ShellRequest(command, pty=False, raw_pty=False, protocol=True, term=None, in_process=True)
    return ShellRequest(command, pty=True, raw_pty=True, protocol=False, term=None, in_process=True)


def _parse_shell(args: bytes) -> ShellRequest | None:
    """`shell[,arg1,arg2,...]:[command]` (services.cpp, ShellService)."""
    options, colon, command = args.partition(b":")
    if not colon:
        return None
    pty = not command  # defaults: PTY for interactive, raw for a command
    protocol = False
    term = "dumb"
    for arg in options.split(b","):
        if arg == b"raw":
            pty = False
        elif arg == b"pty":
            pty = True
        elif arg == b"v2":
            protocol = True
        elif arg.startswith(b"TERM="):
            term = arg[len(b"TERM="):].decode("utf-8", "replace")
        # Unknown arguments are ignored, "to allow for future expansion".
    # Without the protocol a raw subprocess still gets a PTY, in raw mode, so that it
    # receives SIGHUP when the host goes away (shell_service.cpp, StartSubprocess).
    raw_pty = not pty and not protocol
    return ShellRequest(command or None, pty or raw_pty, raw_pty, protocol, term)
