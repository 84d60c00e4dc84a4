"""The phone's userland: mksh as /system/bin/sh and toybox's applets, run under bubblewrap.

The sandbox runs as uid 2000 ("shell") with no network, PHONE_DIR at
/storage/emulated/0, /sdcard -> /storage/self/primary -> /storage/emulated/0 as on
Android 10+, the phone's own /data/local/tmp (shared with its sync service, so a pushed
file is there for the shell), and a /system holding the applets, getprop and the account
names that bionic knows by itself. Only /usr of the host is visible, read-only.
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

from adbvoice.emulator import standins

TOOLS = ("bwrap", "mksh", "toybox", "setsid")
SH = "/system/bin/sh"


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
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()

    def start(self) -> None:
        """Build /system/bin and check that a command runs; raises SandboxError."""
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
        if self._standins:
            standins.install(os.path.join(self._dir, "system"))
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
            self._remove_dir()
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
            "--bind", self._tmp, "/data/local/tmp",
            *(["--bind", self._standins, standins.RECORDS] if self._standins else []),
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
    """SIGKILL bwrap's whole process group (its own session, so the group is its pid): the
    inner bwrap, PID 1 of the sandbox, is in it, and its death ends everything inside.
    Killing only the outer bwrap left the inner one behind, orphaned, now and then."""
    with contextlib.suppress(ProcessLookupError):  # the group has ended already
        os.killpg(proc.pid, signal.SIGKILL)


