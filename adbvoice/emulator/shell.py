"""The shell and exec services: commands for the phone's shell, as adbd runs them.

adbd runs every command as `/system/bin/sh -c CMD` (daemon/shell_service.cpp). With the
shell protocol and no PTY, stdout and stderr travel as separate packets and the exit
code comes last; without the protocol (`shell:CMD`, `exec:CMD`) adbd uses a PTY in raw
mode, so stdout and stderr arrive mixed and the command sees a terminal (toybox `ls`
prints columns there, as on a phone).
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import threading
from typing import IO

from adbvoice.emulator.sandbox import SH, Sandbox
from adbvoice.emulator.services import ShellRequest
from adbvoice.emulator.stream import Stream, StreamClosed
from adbvoice.phone import wire

_EXIT_CANNOT_EXECUTE = 126  # ReportError's exit code
_READ_SIZE = 64 * 1024


def _make_raw(fd: int) -> None:
    """cfmakeraw(3), as adbd applies to the PTY of `exec:` and non-protocol `shell:`."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
               | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSADRAIN, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


def _read_fd(fd: int) -> bytes:
    """os.read that reports a PTY's EIO (its last user closed it) as end of file."""
    try:
        return os.read(fd, _READ_SIZE)
    except OSError:
        return b""


def report_error(stream: Stream, protocol: bool, message: str) -> None:
    """adbd's ReportError: "error: MESSAGE" (a stderr packet and exit 126 under the
    shell protocol), then the stream closes."""
    text = f"error: {message}\n".encode()
    try:
        if protocol:
            stream.write(
                wire.SHELL_HEADER.pack(wire.SHELL_STDERR, len(text)) + text
                + wire.SHELL_HEADER.pack(wire.SHELL_EXIT, 1)
                + bytes([_EXIT_CANNOT_EXECUTE])
            )
        else:
            stream.write(text)
    except StreamClosed:
        return
    stream.finish()


def run_shell(stream: Stream, sandbox: Sandbox, request: ShellRequest) -> None:
    """Run one shell/exec request on `stream` until the command ends or the host closes."""
    master = slave = -1
    if request.pty:
        master, slave = os.openpty()
        if request.raw_pty:
            _make_raw(slave)
        stdin = stdout = stderr = slave
    else:
        stdin = stdout = stderr = subprocess.PIPE
    try:
        proc = sandbox.spawn(request.command, request.term, request.pty, stdin, stdout, stderr)
    except OSError as e:
        if master >= 0:
            os.close(master)
            os.close(slave)
        report_error(stream, request.protocol, f"exec '{SH}' failed: {os.strerror(e.errno or 0)}")
        return
    if slave >= 0:
        os.close(slave)
    if request.protocol:
        _ShellProtocolSession(stream, sandbox, proc, master, request.in_process).run()
    else:
        _RawSession(stream, sandbox, proc, master).run()


class _Session:
    """A running command and the threads that carry its bytes. Host input is always
    consumed, even once the command stops reading, so the host is never left waiting
    for an OKAY (shell_service.cpp, PassInput: "just start dumping").

    When the host closes the stream, adbd sends the shell SIGHUP and closes its ends of
    the command's output (PassDataStreams), then waits for the shell to exit; what the
    shell started and left running goes on, as on a phone."""

    def __init__(self, stream: Stream, sandbox: Sandbox, proc: subprocess.Popen[bytes], master: int):
        self._stream, self._sandbox, self._proc, self._master = stream, sandbox, proc, master
        self._stdin_fd = master if master >= 0 else _fileno(proc.stdin)
        self._stdin_open = True
        self._input_thread = threading.Thread(target=self._input, name="adbd-shell-in", daemon=True)
        self._wake_r, self._wake_w = os.pipe()
        self._state = threading.Lock()
        self._over = False  # the output ended by itself, or the session is being torn down
        stream.on_close(self._hang_up)

    def _hang_up(self) -> None:
        with self._state:
            if self._over:
                return
            self._over = True
            self._sandbox.hang_up(self._proc, self._master)
            os.write(self._wake_w, b"x")

    def _output_ended(self) -> None:
        with self._state:
            self._over = True

    def _read_output(self, fd: int) -> bytes:
        """The command's next output, or b"" at its end or once the host hung up."""
        ready, _, _ = select.select([fd, self._wake_r], [], [])
        if self._wake_r in ready:
            return b""
        return _read_fd(fd)

    def _input(self) -> None:
        try:
            while True:
                self._take_input(self._stream.read())
        except StreamClosed:
            return

    def _take_input(self, data: bytes) -> None:
        raise NotImplementedError

    def _write_stdin(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view and self._stdin_open:
                view = view[os.write(self._stdin_fd, view):]
        except OSError:
            self._stdin_open = False

    def _end(self) -> None:
        """Wait for the shell, and close our ends once the input thread let go of them
        (the stream is closed by now, so it does)."""
        self._sandbox.reap(self._proc)
        self._input_thread.join()
        with self._state:
            self._over = True
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        for fd in (self._master, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)


def _fileno(pipe: IO[bytes] | None) -> int:
    assert pipe is not None
    return pipe.fileno()


class _RawSession(_Session):
    """No protocol: the stream carries the PTY's bytes both ways."""

    def run(self) -> None:
        self._input_thread.start()
        try:
            while data := self._read_output(self._master):
                self._stream.write(data)
            self._output_ended()
            self._stream.finish()
        except StreamClosed:
            pass
        finally:
            # adbd's end of the PTY closes with the stream (the terminal hangs up, if the
            # command had not ended); the stdin thread sees EBADF at worst.
            with self._state:
                self._over = True
                os.close(self._master)
                self._master = -1
            self._end()

    def _take_input(self, data: bytes) -> None:
        self._write_stdin(data)


class _ShellProtocolSession(_Session):
    """Shell protocol v2 (shell_protocol.h): [id:u8][length:u32 LE][data] both ways."""

    def __init__(
        self, stream: Stream, sandbox: Sandbox, proc: subprocess.Popen[bytes], master: int, in_process: bool
    ):
        super().__init__(stream, sandbox, proc, master)
        self._in_process = in_process
        self._write_lock = threading.Lock()
        self._inbuf = bytearray()

    def run(self) -> None:
        if self._master >= 0:
            outputs = [(self._master, wire.SHELL_STDOUT)]
        else:
            outputs = [(_fileno(self._proc.stdout), wire.SHELL_STDOUT),
                       (_fileno(self._proc.stderr), wire.SHELL_STDERR)]
        self._input_thread.start()
        pumps = [
            threading.Thread(target=self._output, args=(fd, ident), name="adbd-shell-out", daemon=True)
            for fd, ident in outputs
        ]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()  # a command that outlives its stream gets EPIPE, as on a phone
        # adbd stops passing data once both outputs are closed, then waits for the
        # process and sends its exit code (Subprocess::WaitForExit).
        code = self._sandbox.reap(self._proc)
        self._output_ended()  # the shell is gone: nothing to hang up any more
        if self._in_process:
            code = 1
        try:
            self._packet(wire.SHELL_EXIT, bytes([code & 0xFF]))
            self._stream.finish()
        except StreamClosed:
            pass
        finally:
            self._end()

    def _packet(self, ident: int, data: bytes) -> None:
        with self._write_lock:
            self._stream.write(wire.SHELL_HEADER.pack(ident, len(data)) + data)

    def _output(self, fd: int, ident: int) -> None:
        try:
            while data := self._read_output(fd):
                self._packet(ident, data)
        except StreamClosed:
            pass

    def _take_input(self, data: bytes) -> None:
        header = wire.SHELL_HEADER
        self._inbuf += data
        while len(self._inbuf) >= header.size:
            ident, length = header.unpack_from(self._inbuf)
            if len(self._inbuf) < header.size + length:
                return
            payload = bytes(self._inbuf[header.size : header.size + length])
            del self._inbuf[: header.size + length]
            self._packet_in(ident, payload)

    def _packet_in(self, ident: int, data: bytes) -> None:
        if ident == wire.SHELL_STDIN:
            self._write_stdin(data)
        elif ident == wire.SHELL_CLOSE_STDIN and self._master < 0 and self._stdin_open:
            # PTYs cannot close just their input; adbd leaves them open.
            self._stdin_open = False  # and so the fd number is never used again
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        elif ident == wire.SHELL_WINDOW_SIZE_CHANGE and self._master >= 0:
            try:
                rows, cols, xpixels, ypixels = (
                    int(n) for n in data.rstrip(b"\0").replace(b"x", b",").split(b",")
                )
            except ValueError:
                return
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, xpixels, ypixels))
