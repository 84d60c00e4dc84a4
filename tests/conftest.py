"""Shared scaffolding: an isolated home, an emulated phone on real TCP, and the CLI run
both in-process (Typer's runner) and as a real subprocess."""

from __future__ import annotations

import json
import os
import pty
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adbvoice.cli import app
from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import PhoneTree, build_phone_tree
from adbvoice.phone.keys import load_signer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def session_key(tmp_path_factory) -> Path:
    """One adb key for the whole run: RSA key generation is slow enough to matter."""
    key = tmp_path_factory.mktemp("key") / "adbkey"
    load_signer(key)
    return key


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, session_key) -> Path:
    """A private HOME holding a copy of the session's adb key, and the only config there is;
    UTC; and no adb server (ANDROID_ADB_SERVER_PORT points at a closed port) unless a test
    starts one."""
    home = tmp_path / "home"
    (home / ".android").mkdir(parents=True)
    for suffix in ("", ".pub"):
        shutil.copy2(f"{session_key}{suffix}", home / ".android" / f"adbkey{suffix}")
    monkeypatch.setenv("HOME", str(home))
    for name in [n for n in os.environ if n.startswith("ADBVOICE_") or n in ("XDG_CONFIG_HOME", "XDG_STATE_HOME")]:
        monkeypatch.delenv(name)  # config and log files live in this HOME only
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))
    time.tzset()
    return home


@pytest.fixture
def phone_tree(tmp_path) -> PhoneTree:
    return build_phone_tree(tmp_path / "sdcard", notes=24)


@pytest.fixture
def long_copy_tree(tmp_path) -> PhoneTree:
    """Enough notes (3.7 MB) that a copy over a slow link is still running seconds after
    its first group of notes was published."""
    return build_phone_tree(tmp_path / "sdcard", notes=80)


@pytest.fixture
def phone(phone_tree) -> Iterator[EmulatedPhone]:
    with EmulatedPhone(phone_tree.root) as emulated:
        yield emulated


@pytest.fixture
def archive(tmp_path) -> Path:
    return tmp_path / "archive"


@dataclass(frozen=True)
class BackedUp:
    """An archive filled by real backups, shared by a test module: read it, or `copy()` it."""

    root: Path
    tree: PhoneTree
    notes: list[dict]  # `ls --json` right after the backups

    def copy(self, where: Path) -> Path:
        target = where / "archive"
        shutil.copytree(self.root, target, symlinks=True)
        return target


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory, session_key) -> BackedUp:
    """Two real backups from the emulated phone, once per module: its voice notes (broken
    ones included), then its WhatsApp Audio files too — two runs in the catalog."""
    base = tmp_path_factory.mktemp("backed-up")
    tree = build_phone_tree(base / "sdcard", notes=24)
    root = base / "archive"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        patch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))
        time.tzset()
        with EmulatedPhone(tree.root) as phone:
            for extra in ([], ["--include-audio"]):
                result = run_cli("backup", root, "--tcp", phone.address, "--adb-key", session_key, *extra)
                assert result.exit_code in (0, 3), result.stderr
        listed = run_cli("ls", root, "--json")
    time.tzset()
    return BackedUp(root, tree, json.loads(listed.stdout))


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KB tmpfs: a real full disk (we are root here and in CI)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k,mode=0700", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


# Every exit code the CLI gave in this session (run_cli, run_process, run_on_terminal):
# tests/reliability/test_exit_codes.py checks the suite produces each code README lists.
EXIT_CODES_SEEN: set[int] = set()


def run_cli(*args: str) -> Outcome:
    """The CLI in-process, stdout and stderr kept apart."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    EXIT_CODES_SEEN.add(result.exit_code)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run_process(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Outcome:
    """The CLI as a real subprocess (signals, locks, crashes), with this test's environment."""
    result = subprocess.run(
        [sys.executable, "-m", "adbvoice", *[str(a) for a in args]],
        capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ),
    )
    EXIT_CODES_SEEN.add(result.returncode)
    return Outcome(result.returncode, result.stdout, result.stderr)


class PatchedOs:
    """The `os` module as one module sees it, with some functions replaced."""

    def __init__(self, **replaced: Callable) -> None:
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


def is_file(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


def archived_files(archive: Path) -> dict[str, bytes]:
    """Every file in the archive outside .adbvoice/, by relative path."""
    return {
        p.relative_to(archive).as_posix(): p.read_bytes()
        for p in archive.rglob("*")
        if p.is_file() and ".adbvoice" not in p.relative_to(archive).parts
    }


def run_on_terminal(*args: str, timeout: float = 60) -> Outcome:
    """The CLI as a subprocess whose stdout is a terminal (a pty): what a person sees."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "adbvoice", *[str(a) for a in args]], stdout=terminal, stderr=subprocess.PIPE, text=True
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    stderr = process.communicate(timeout=timeout)[1]
    os.close(controller)
    EXIT_CODES_SEEN.add(process.returncode)
    return Outcome(process.returncode, shown.decode("utf-8", "replace").replace("\r\n", "\n"), stderr)
