"""Running commands on the phone's own shell (mksh + toybox on Android).

With the `shell_v2` feature the stream carries packets (shell_protocol.h): stdout, stderr
and the exit code arrive separately, and stdin can be closed, so a command can read a long
argument list from stdin instead of a command line. Without it, `exec:` gives raw stdout only.
"""

from __future__ import annotations

from dataclasses import dataclass

from adbvoice.phone import wire
from adbvoice.phone.connection import LinkClosed, SentTooMuch, ServiceRefused, StreamEnded
from adbvoice.phone.sync import ByteStream, StreamOpener

# Keep stdin packets well under any peer's buffer (adbd's is MAX_PAYLOAD).
STDIN_PACKET = 64 * 1024
# adbd's shell packets fill at most its buffer of one max payload (shell_protocol.h).
PACKET_MAX = wire.MAX_PAYLOAD
# What a command may print unless it says otherwise: every answer we ask for is small but
# the listing (scripts.LISTING_MAX) and the hashes (sized by the files asked for).
OUTPUT_MAX = 1 << 20
# stderr is only ever shown: past this much, the rest is dropped, not an error.
STDERR_KEPT = 64 * 1024


@dataclass(frozen=True)
class CommandResult:
    stdout: bytes
    stderr: bytes
    exit_code: int | None  # None when the phone has no shell_v2 and cannot tell us


class RunningCommand:
    """A command started on the phone; its output is read on demand, so it can run while
    other streams of the same connection carry files."""

    def __init__(self, stream: ByteStream, shell_v2: bool, limit: int = OUTPUT_MAX) -> None:
        self._stream = stream
        self._v2 = shell_v2
        self._limit = limit
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.exit_code: int | None = None
        self.finished = False

    def read_more(self) -> bool:
        """Block for the next piece of output; False once the command has ended."""
        if self.finished:
            return False
        if not self._v2:
            part = self._stream.read(1 << 20)
            if part:
                self._take_stdout(part)
                return True
            return self._end()
        try:
            header = self._stream.read_exact(wire.SHELL_HEADER.size)
        except StreamEnded:
            return self._end()
        ident, length = wire.SHELL_HEADER.unpack(header)
        if length > PACKET_MAX:
            raise SentTooMuch(f"the phone's shell announced a {length:,}-byte packet (at most {PACKET_MAX:,})")
        data = self._stream.read_exact(length) if length else b""
        if ident == wire.SHELL_STDOUT:
            self._take_stdout(data)
        elif ident == wire.SHELL_STDERR:
            self.stderr += data[: max(STDERR_KEPT - len(self.stderr), 0)]
        elif ident == wire.SHELL_EXIT:
            self.exit_code = data[0] if data else None
            return self._end()
        return True

    def _take_stdout(self, data: bytes) -> None:
        if len(self.stdout) + len(data) > self._limit:
            self.close()
            raise SentTooMuch(f"the phone's shell printed more than {self._limit:,} bytes for one command")
        self.stdout += data

    def read_arrived(self) -> None:
        """Take in the output that has already arrived, without waiting for more (after a
        lost connection, it is all there will be)."""
        try:
            while not self.finished and self._stream.readable_now():
                self.read_more()
        except ServiceRefused:
            self.finished = True
        except LinkClosed:
            pass  # a packet cut in half by the loss: what came before it was taken in

    def _end(self) -> bool:
        self.finished = True
        self._stream.close()
        return False

    def wait(self) -> CommandResult:
        while self.read_more():
            pass
        return CommandResult(bytes(self.stdout), bytes(self.stderr), self.exit_code)

    def close(self) -> None:
        self._stream.close()


class ShellClient:
    def __init__(self, opener: StreamOpener, *, shell_v2: bool) -> None:
        self._opener = opener
        self.shell_v2 = shell_v2

    def start(
        self,
        command: str,
        stdin: bytes | None = None,
        *,
        raw: bool = False,
        background: bool = False,
        limit: int = OUTPUT_MAX,
    ) -> RunningCommand:
        """Start `command`; with shell_v2, `stdin` is sent and then closed. `raw` asks for
        `exec:` even where shell_v2 exists: stdout and stderr mixed, no exit code, but also
        no exit packet after the output (one round trip less). `background`: its output is
        read now and then, not awaited (see AdbLink.open). More than `limit` bytes of
        stdout is SentTooMuch: the phone is not running what we asked."""
        v2 = self.shell_v2 and not raw
        if stdin is not None and not v2:
            raise ValueError("stdin needs the shell_v2 feature")
        stream = self._opener(f"shell,v2,raw:{command}" if v2 else f"exec:{command}", background=background)
        if v2:
            packets = bytearray()
            data = stdin or b""
            for offset in range(0, len(data), STDIN_PACKET):
                piece = data[offset : offset + STDIN_PACKET]
                packets += wire.SHELL_HEADER.pack(wire.SHELL_STDIN, len(piece)) + piece
            packets += wire.SHELL_HEADER.pack(wire.SHELL_CLOSE_STDIN, 0)
            try:
                stream.write(bytes(packets))
            except StreamEnded:
                pass  # the command ended before it read its stdin (say, no shell to run it): its output tells
        return RunningCommand(stream, v2, limit)

    def run(
        self, command: str, stdin: bytes | None = None, *, raw: bool = False, limit: int = OUTPUT_MAX
    ) -> CommandResult:
        return self.start(command, stdin, raw=raw, limit=limit).wait()
