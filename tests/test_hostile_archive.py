"""The archive folder as found on disk is checked before it is used: a run stuck holding
the lock is reported even to cron, and links, FIFOs and foreign owners planted in the
state folder make a backup refuse, never touch anything outside the archive."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_process

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, sys.argv[2].encode())
print("locked", flush=True)
time.sleep(60)
"""


def hold_lock(archive: Path, until: str) -> subprocess.Popen:
    """A process holding the archive's lock whose line says it expects to end at `until`."""
    line = f"adbvoice pid {os.getpid() + 1} on testhost since 2026-01-01T00:00:00Z until {until}\n"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(archive / ".adbvoice" / "lock"), line],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture
def backed_up_once(phone, archive):
    assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)  # 3: the broken notes
    return archive


def utc(offset_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def test_a_run_stuck_past_its_own_expected_end_is_reported_even_under_if_present(phone, backed_up_once):
    archive = backed_up_once
    busy = hold_lock(archive, utc(3600))
    try:
        quiet = run_process("backup", archive, "--tcp", phone.address, "--if-present", "--quiet")
    finally:
        busy.kill()
        busy.wait()
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (22, "", "")  # busy: cron hears nothing

    stuck = hold_lock(archive, utc(-2 * 3600))
    try:
        told = run_process("backup", archive, "--tcp", phone.address, "--if-present", "--quiet")
    finally:
        stuck.kill()
        stuck.wait()
    assert told.exit_code == 68, told.stderr
    assert told.stderr.count("\n") == 1 and told.stderr.startswith("adbvoice: ")
    assert "locked by adbvoice pid" in told.stderr and "on testhost since 2026-01-01T00:00:00Z" in told.stderr
    assert "that run is stuck; stop it and run again" in told.stderr


def test_a_backup_says_in_the_lock_until_when_it_expects_to_run(phone, backed_up_once):
    archive = backed_up_once
    result = run_cli("backup", archive, "--tcp", phone.address)
    assert result.exit_code in (0, 3), result.stderr
    line = (archive / ".adbvoice" / "lock").read_text()
    assert line.startswith(f"adbvoice pid {os.getpid()} on "), line
    until = datetime.fromisoformat(line.split(" until ")[1].strip()).timestamp()
    # Nothing to copy: three rounds of 20 I/O timeouts at most, and the margin.
    assert time.time() < until < time.time() + 3 * 20 * 30 + 600 + 60
    fd = os.open(archive / ".adbvoice" / "lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once the run ended
    os.close(fd)
