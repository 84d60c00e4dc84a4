"""The phone's shell: Android's own userland (mksh as /system/bin/sh, toybox applets)
in a bubblewrap sandbox, and the shell/exec services that run commands in it.

adbd runs every command as `/system/bin/sh -c CMD` (daemon/shell_service.cpp). With the
shell protocol and no PTY, stdout and stderr travel as separate packets and the exit
code comes last; without the protocol (`shell:CMD`, `exec:CMD`) adbd uses a PTY in raw
mode, so stdout and stderr arrive mixed and the command sees a terminal (toybox `ls`
prints columns there, as on a phone). The sandbox runs as uid 2000 ("shell") with no
network, PHONE_DIR at /storage/emulated/0, and /sdcard -> /storage/self/primary ->
/storage/emulated/0 as on Android 10+.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import threading
from pathlib import Path
from typing import IO

from adbvoice import adbwire
from adbvoice.emulator.services import ShellRequest
from adbvoice.emulator.stream import Stream, StreamClosed

TOOLS = ("bwrap", "mksh", "toybox", "setsid")
SH = "/system/bin/sh"
_EXIT_CANNOT_EXECUTE = 126  # ReportError's exit code
_READ_SIZE = 64 * 1024


class SandboxError(Exception):
    """The shell cannot run here (tools missing, or bwrap refuses)."""


def find_tools() -> dict[str, str]:
    """Absolute paths of bwrap, mksh, toybox and util-linux's setsid; all but bwrap run
    inside the sandbox, so they must live under /usr, the only host folder it sees.
    Raises SandboxError naming what is missing."""
    found: dict[str, str] = {}
    missing = []
    for tool in TOOLS:
        path = shutil.which(tool)
        if path is None or (tool != "bwrap" and not os.path.realpath(path).startswith("/usr/")):
            missing.append(tool)
        else:
            found[tool] = os.path.realpath(path)
    if missing:
        raise SandboxError(
            f"missing {', '.join(missing)} (Debian packages: bubblewrap mksh toybox util-linux)"
        )
    return found


# Bionic names Android's fixed uids itself (android_filesystem_config.h); glibc reads
# /etc, which on Android is a link to /system/etc. These let toybox's id and ls -l
# print "shell" and "root" as on a phone.
_ACCOUNTS = {
    "passwd": "root:x:0:0::/:/system/bin/sh\nsystem:x:1000:1000::/:/system/bin/sh\n"
    "shell:x:2000:2000::/:/system/bin/sh\n",
    "group": "root:x:0:\nsystem:x:1000:\nsdcard_rw:x:1015:\nmedia_rw:x:1023:\n"
    "ext_data_rw:x:1078:\nshell:x:2000:\neverybody:x:9997:\n",
}


def _getprop_script(props: dict[str, str]) -> str:
    """Android's getprop for a few properties: no argument lists `[key]: [value]`
    lines sorted by key; `getprop KEY [DEFAULT]` prints the value or DEFAULT."""

    def q(text: str) -> str:
        return "'" + text.replace("'", "'\\''") + "'"

    listing = "".join(f"  printf '[%s]: [%s]\\n' {q(k)} {q(v)}\n" for k, v in sorted(props.items()))
    cases = "".join(f"  {q(k)}) printf '%s\\n' {q(v)} ;;\n" for k, v in sorted(props.items()))
    return (
        "#!/system/bin/sh\n"
        'if [ $# -eq 0 ]; then\n'
        f"{listing}"
        "  exit 0\n"
        "fi\n"
        'case "$1" in\n'
        f"{cases}"
        '  *) printf \'%s\\n\' "${2-}" ;;\n'
        "esac\n"
    )


class Sandbox:
    """The phone's /system and the bwrap command line around each shell command."""

    def __init__(self, root: Path, props: dict[str, str], device: str) -> None:
        self._root = os.path.realpath(root)
        self._props = props
        self._device = device
        self._tools: dict[str, str] = {}
        self._dir: str | None = None
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()

    def start(self) -> None:
        """Build /system/bin and check that a command runs; raises SandboxError."""
        self._tools = find_tools()
        self._dir = tempfile.mkdtemp(prefix="adbvoice-phone-")
        bin_dir = os.path.join(self._dir, "system", "bin")
        os.makedirs(bin_dir)
        applets = subprocess.run(
            [self._tools["toybox"]], capture_output=True, check=False
        ).stdout.split()
        for applet in [b"toybox", *applets]:
            name = os.fsdecode(applet)
            if name not in ("sh", "getprop") and "/" not in name:
                os.symlink(self._tools["toybox"], os.path.join(bin_dir, name))
        os.symlink(self._tools["mksh"], os.path.join(bin_dir, "sh"))
        etc_dir = os.path.join(self._dir, "system", "etc")
        os.makedirs(etc_dir)
        for name, text in _ACCOUNTS.items():
            with open(os.path.join(etc_dir, name), "w") as f:
                f.write(text)
        getprop = os.path.join(bin_dir, "getprop")
        with open(getprop, "w") as f:
            f.write(_getprop_script(self._props))
        os.chmod(getprop, 0o755)
        try:
            probe = subprocess.run(
                self.argv(b"exit 0"), env=self.env(None),
                stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            self.close()
            raise SandboxError(f"bwrap did not run: {e}") from None
        if probe.returncode != 0:
            self.close()
            message = probe.stderr.decode("utf-8", "replace").strip()
            raise SandboxError(f"bwrap failed ({probe.returncode}): {message}")

    def close(self) -> None:
        """Kill every command still running and remove /system."""
        with self._lock:
            procs, self._procs = self._procs, set()
        for proc in procs:
            _kill(proc)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def argv(self, command: bytes | None, pty: bool = False) -> list[str | bytes]:
        """bwrap + `/system/bin/sh -c CMD`, or a login shell if None (adbd execs
        `-/system/bin/sh`; bwrap cannot set argv[0], and mksh's -l means the same).

        On a PTY, adbd's child opens it after setsid(), which makes it the controlling
        terminal (job control, SIGHUP when the host goes); util-linux's `setsid --ctty`
        does that inside the sandbox (toybox's -c only sets the foreground group)."""
        assert self._dir is not None
        lib64 = ["--symlink", "usr/lib64", "/lib64"] if os.path.isdir("/usr/lib64") else []
        sandbox: list[str | bytes] = [
            self._tools["bwrap"],
            "--unshare-user", "--uid", "2000", "--gid", "2000",
            "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--hostname", "localhost",
            "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib",
            *lib64,
            "--proc", "/proc",
            "--dev", "/dev",
            "--ro-bind", os.path.join(self._dir, "system"), "/system",
            "--symlink", "/system/etc", "/etc",
            "--bind", self._root, "/storage/emulated/0",
            "--symlink", "/storage/emulated/0", "/storage/self/primary",
            "--symlink", "/storage/self/primary", "/sdcard",
            "--tmpfs", "/data/local/tmp",
            "--chdir", "/",
        ]
        if pty:
            sandbox += [self._tools["setsid"], "--ctty", "--wait"]
        if command is None:
            return [*sandbox, SH, "-l"]
        return [*sandbox, SH, "-c", command]

    def env(self, term: str | None) -> dict[str, str]:
        """adbd's child environment (shell_service.cpp, ForkAndExec) on top of init's."""
        env = {
            "PATH": "/system/bin",
            "ANDROID_DATA": "/data",
            "ANDROID_ROOT": "/system",
            "ANDROID_STORAGE": "/storage",
            "EXTERNAL_STORAGE": "/sdcard",
            "HOME": "/",
            "HOSTNAME": self._device,
            "LOGNAME": "shell",
            "SHELL": SH,
            "TMPDIR": "/data/local/tmp",
            "USER": "shell",
            # Bionic's C locale is UTF-8; glibc's is ASCII, where toybox would print
            # octal escapes instead of the UTF-8 names a phone shows.
            "LC_CTYPE": "C.UTF-8",
        }
        if term:
            env["TERM"] = term
        return env

    def spawn(
        self, command: bytes | None, term: str | None, pty: bool, stdin: int, stdout: int, stderr: int
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            self.argv(command, pty), env=self.env(term), start_new_session=True,
            stdin=stdin, stdout=stdout, stderr=stderr,
        )
        with self._lock:
            self._procs.add(proc)
        return proc

    def reap(self, proc: subprocess.Popen[bytes]) -> int:
        """Wait for a command; its exit code as adbd reports it (128+N if killed by N)."""
        code = proc.wait()
        with self._lock:
            self._procs.discard(proc)
        return 0x80 | -code if code < 0 else code

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL bwrap; --die-with-parent and the PID namespace take everything inside."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it just ended
            proc.send_signal(signal.SIGKILL)


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
                adbwire.SHELL_HEADER.pack(adbwire.SHELL_STDERR, len(text)) + text
                + adbwire.SHELL_HEADER.pack(adbwire.SHELL_EXIT, 1)
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
    stream.on_close(lambda: sandbox.kill(proc))
    if request.protocol:
        _ShellProtocolSession(stream, sandbox, proc, master).run()
    else:
        _RawSession(stream, sandbox, proc, master).run()


class _Session:
    """A running command and the threads that carry its bytes. Host input is always
    consumed, even once the command stops reading, so the host is never left waiting
    for an OKAY (shell_service.cpp, PassInput: "just start dumping")."""

    def __init__(self, stream: Stream, sandbox: Sandbox, proc: subprocess.Popen[bytes], master: int):
        self._stream, self._sandbox, self._proc, self._master = stream, sandbox, proc, master
        self._stdin_fd = master if master >= 0 else _fileno(proc.stdin)
        self._stdin_open = True
        self._input_thread = threading.Thread(target=self._input, name="adbd-shell-in", daemon=True)

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
        """Kill what is left, and close our ends once the input thread let go of them
        (the stream is closed by now, so it does)."""
        self._sandbox.kill(self._proc)
        self._sandbox.reap(self._proc)
        self._input_thread.join()
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        if self._master >= 0:
            os.close(self._master)


def _fileno(pipe: IO[bytes] | None) -> int:
    assert pipe is not None
    return pipe.fileno()


class _RawSession(_Session):
    """No protocol: the stream carries the PTY's bytes both ways."""

    def run(self) -> None:
        self._input_thread.start()
        try:
            while data := _read_fd(self._master):
                self._stream.write(data)
            self._stream.finish()
        except StreamClosed:
            pass
        finally:
            self._end()

    def _take_input(self, data: bytes) -> None:
        self._write_stdin(data)


class _ShellProtocolSession(_Session):
    """Shell protocol v2 (shell_protocol.h): [id:u8][length:u32 LE][data] both ways."""

    def __init__(self, stream: Stream, sandbox: Sandbox, proc: subprocess.Popen[bytes], master: int):
        super().__init__(stream, sandbox, proc, master)
        self._write_lock = threading.Lock()
        self._inbuf = bytearray()

    def run(self) -> None:
        if self._master >= 0:
            outputs = [(self._master, adbwire.SHELL_STDOUT)]
        else:
            outputs = [(_fileno(self._proc.stdout), adbwire.SHELL_STDOUT),
                       (_fileno(self._proc.stderr), adbwire.SHELL_STDERR)]
        self._input_thread.start()
        pumps = [
            threading.Thread(target=self._output, args=(fd, ident), name="adbd-shell-out", daemon=True)
            for fd, ident in outputs
        ]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        # adbd stops passing data once both outputs are closed, then waits for the
        # process and sends its exit code (Subprocess::WaitForExit).
        code = self._sandbox.reap(self._proc)
        try:
            self._packet(adbwire.SHELL_EXIT, bytes([code & 0xFF]))
            self._stream.finish()
        except StreamClosed:
            pass
        finally:
            self._end()

    def _packet(self, ident: int, data: bytes) -> None:
        with self._write_lock:
            self._stream.write(adbwire.SHELL_HEADER.pack(ident, len(data)) + data)

    def _output(self, fd: int, ident: int) -> None:
        try:
            while data := _read_fd(fd):
                self._packet(ident, data)
        except StreamClosed:
            self._sandbox.kill(self._proc)

    def _take_input(self, data: bytes) -> None:
        header = adbwire.SHELL_HEADER
        self._inbuf += data
        while len(self._inbuf) >= header.size:
            ident, length = header.unpack_from(self._inbuf)
            if len(self._inbuf) < header.size + length:
                return
            payload = bytes(self._inbuf[header.size : header.size + length])
            del self._inbuf[: header.size + length]
            self._packet_in(ident, payload)

    def _packet_in(self, ident: int, data: bytes) -> None:
        if ident == adbwire.SHELL_STDIN:
            self._write_stdin(data)
        elif ident == adbwire.SHELL_CLOSE_STDIN and self._master < 0 and self._stdin_open:
            # PTYs cannot close just their input; adbd leaves them open.
            self._stdin_open = False  # and so the fd number is never used again
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        elif ident == adbwire.SHELL_WINDOW_SIZE_CHANGE and self._master >= 0:
            try:
                rows, cols, xpixels, ypixels = (
                    int(n) for n in data.rstrip(b"\0").replace(b"x", b",").split(b",")
                )
            except ValueError:
                return
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, xpixels, ypixels))
