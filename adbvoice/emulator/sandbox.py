"""The phone's userland: mksh as /system/bin/sh and toybox's applets, run under bubblewrap.

The sandbox runs as uid 2000 ("shell") with a network of its own (loopback only), PHONE_DIR at
/storage/emulated/0, /sdcard -> /storage/self/primary -> /storage/emulated/0 as on
Android 10+, the phone's own /data/local/tmp (shared with its sync service, so a pushed
file is there for the shell), and a /system holding the applets, getprop (toolbox.py) and the account
names that bionic knows by itself. Only /usr of the host is visible, read-only. Every
command enters the phone's one set of namespaces (namespaces.py), as adbd's children share
one kernel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path

from adbvoice.emulator import standins, toolbox
from adbvoice.emulator.namespaces import NamespaceError, PhoneNamespaces, child_of

TOOLS = ("bwrap", "mksh", "toybox", "setsid", "nsenter", "python3")
SH = "/system/bin/sh"


class SandboxError(Exception):
    """The shell cannot run here (tools missing, or bwrap refuses)."""


def find_tools() -> dict[str, str]:
    """Absolute paths of bwrap, nsenter, mksh, toybox, util-linux's setsid and python3 (for
    dd); all but bwrap and nsenter run inside the sandbox, so they must live under /usr,
    the only host folder it sees.
    Raises SandboxError naming what is missing."""
    found: dict[str, str] = {}
    missing = []
    for tool in TOOLS:
        inside = tool not in ("bwrap", "nsenter")
        # Inside, the system's own (a virtualenv's python3 on PATH lives outside /usr).
        path = shutil.which(tool, path="/usr/bin:/usr/sbin" if inside else None)
        if path is None or (inside and not os.path.realpath(path).startswith("/usr/")):
            missing.append(tool)
        else:
            found[tool] = os.path.realpath(path)
    if missing:
        raise SandboxError(
            f"missing {', '.join(missing)} (Debian packages: bubblewrap mksh toybox util-linux python3)"
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


class Sandbox:
    """The phone's /system and the command line around each shell command."""

    def __init__(
        self, root: Path, data_local_tmp: Path, props: dict[str, str], device: str, standins: Path | None = None
    ) -> None:
        self._root = os.path.realpath(root)
        self._standins = os.path.realpath(standins) if standins else None
        self._tmp = os.path.realpath(data_local_tmp)
        self._props = props
        self._device = device
        self._tools: dict[str, str] = {}
        self._dir: str | None = None
        self._namespaces: PhoneNamespaces | None = None
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()

    @property
    def namespaces(self) -> PhoneNamespaces:
        assert self._namespaces is not None
        return self._namespaces

    def start(self) -> None:
        """Build /system/bin, start the phone's namespaces and check that a command runs;
        raises SandboxError."""
        self._tools = find_tools()
        self._dir = tempfile.mkdtemp(prefix="adbvoice-phone-")
        # Removed by close(), or at interpreter exit for a phone nobody stopped.
        self._remove_dir = weakref.finalize(self, shutil.rmtree, self._dir, True)
        bin_dir = os.path.join(self._dir, "system", "bin")
        os.makedirs(bin_dir)
        applets = subprocess.run(
            [self._tools["toybox"]], capture_output=True, check=False
        ).stdout.split()
        for applet in [b"toybox", *applets]:
            name = os.fsdecode(applet)
            if name not in ("sh", *toolbox.COMMANDS) and "/" not in name:
                os.symlink(self._tools["toybox"], os.path.join(bin_dir, name))
        os.symlink(self._tools["mksh"], os.path.join(bin_dir, "sh"))
        toolbox.install(Path(bin_dir), Path(self._dir, "properties"), self._props)
        etc_dir = os.path.join(self._dir, "system", "etc")
        os.makedirs(etc_dir)
        for name, text in _ACCOUNTS.items():
            with open(os.path.join(etc_dir, name), "w") as f:
                f.write(text)
        if self._standins:
            standins.install(os.path.join(self._dir, "system"))
        self._namespaces = PhoneNamespaces(self._bwrap_argv(), self._tools["nsenter"], self._tools["python3"])
        try:
            self._namespaces.start()
            probe = subprocess.run(
                self.argv(b"exit 0"), env=self.env(None),
                stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False,
            )
        except (NamespaceError, OSError, subprocess.TimeoutExpired) as e:
            self.close()
            raise SandboxError(f"bwrap did not run: {e}") from None
        if probe.returncode != 0:
            self.close()
            message = probe.stderr.decode("utf-8", "replace").strip()
            raise SandboxError(f"the phone's shell failed ({probe.returncode}): {message}")

    def close(self) -> None:
        """Kill every command still running, end the namespaces and remove /system."""
        with self._lock:
            procs, self._procs = self._procs, set()
        for proc in procs:
            _kill(proc)
        if self._namespaces is not None:
            self._namespaces.close()
            self._namespaces = None
        if self._dir is not None:
            self._remove_dir()
            self._dir = None

    def _bwrap_argv(self) -> list[str | bytes]:
        """bwrap with the phone's namespaces and mounts, up to the command."""
        assert self._dir is not None
        lib64 = ["--symlink", "usr/lib64", "/lib64"] if os.path.isdir("/usr/lib64") else []
        return [
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
            "--bind", os.path.join(self._dir, "properties"), toolbox.PROPERTIES,
            "--ro-bind", os.path.join(self._dir, "system"), "/system",
            "--symlink", "/system/etc", "/etc",
            "--bind", self._root, "/storage/emulated/0",
            "--symlink", "/storage/emulated/0", "/storage/self/primary",
            "--symlink", "/storage/self/primary", "/sdcard",
            "--bind", self._tmp, "/data/local/tmp",
            *(["--bind", self._standins, standins.RECORDS] if self._standins else []),
            "--chdir", "/",
        ]

    def argv(self, command: bytes | None, pty: bool = False) -> list[str | bytes]:
        """`/system/bin/sh -c CMD`, or a login shell if None (adbd execs `-/system/bin/sh`;
        argv[0] cannot be set here, and mksh's -l means the same), in the phone's
        namespaces, in a session of its own (adbd's child calls setsid()).

        On a PTY, adbd's child opens it after setsid(), which makes it the controlling
        terminal (job control, SIGHUP when the host goes); util-linux's `setsid --ctty`
        does that (toybox's -c only sets the foreground group)."""
        session = [self._tools["setsid"], *(["--ctty"] if pty else []), "--wait"]
        shell = [SH, "-l"] if command is None else [SH, "-c", command]
        return self.namespaces.enter([*session, *shell])

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

    def hang_up(self, proc: subprocess.Popen[bytes], pty: int = -1) -> None:
        """The host closed the stream. adbd sends SIGHUP to the shell it forked
        (shell_service.cpp, PassDataStreams: "protocol FD died"); on a PTY, closing the
        master makes the kernel send SIGHUP to the terminal's foreground process group
        and to the session leader, the shell."""
        if proc.poll() is not None:
            return  # reaped: its pid, and its child's, may be another process's by now
        shell = child_of(proc.pid)
        if shell is None:
            return
        targets = [shell]
        if pty >= 0:
            with contextlib.suppress(OSError):
                group = os.tcgetpgrp(pty)
                # 0 when the terminal has no foreground group (yet, or any more): kill(-0)
                # would signal our own process group.
                if group > 1:
                    targets.append(-group)
        for target in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGHUP)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL nsenter and the shell it runs: the shell's session is its own pid."""
    if proc.poll() is not None:
        return  # reaped: the pid may be another process's by now
    shell = child_of(proc.pid, timeout=0)
    for group in (proc.pid, shell):
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # ended already
                os.killpg(group, signal.SIGKILL)
