"""The archive folder as found on disk is checked before it is used: a run stuck holding
the lock is reported even to cron, and links, FIFOs and foreign owners planted in the
state folder make a backup refuse, never touch anything outside the archive."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import archived_files, run_cli, run_process
from tests.reliability.conftest import tree_listing

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


@pytest.fixture
def documents(tmp_path) -> Path:
    """A user's own files outside the archive: what a planted link points at."""
    folder = tmp_path / "documents"
    folder.mkdir()
    for name in ("taxes.pdf", "letter.txt"):
        (folder / name).write_bytes(name.encode() * 100)
    return folder


def untouched(documents: Path, before: dict[str, tuple]) -> bool:
    return tree_listing(documents) == before and all(p.read_bytes() == p.name.encode() * 100
                                                    for p in documents.iterdir() if p.is_file())


def one_line_error(result, code: int, *said: str) -> str:  # noqa: ANN001 - an Outcome
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adbvoice: "), result.stderr
    for text in said:
        assert text in lines[0], lines[0]
    return lines[0]


def plant_state_link(archive: Path, name: str, target: Path) -> None:
    state = archive / ".adbvoice"
    if (state / name).is_dir() and not (state / name).is_symlink():
        (state / name).rmdir()
    else:
        (state / name).unlink(missing_ok=True)
    (state / name).symlink_to(target)


@pytest.mark.parametrize("planted", ["tmp", "lock", "catalog.sqlite", ".adbvoice"])
def test_a_link_planted_in_the_state_folder_is_refused_and_nothing_outside_changes(
    planted, phone, backed_up_once, documents
):
    archive = backed_up_once
    target = documents if planted in ("tmp", ".adbvoice") else documents / "taxes.pdf"
    if planted == ".adbvoice":
        os.rename(archive / ".adbvoice", archive.parent / "moved-state")
        (archive / ".adbvoice").symlink_to(documents)
    else:
        plant_state_link(archive, planted, target)
    before = tree_listing(documents)
    notes_before = archived_files(archive)

    result = run_cli("backup", archive, "--tcp", phone.address)

    one_line_error(result, 69, "is a symbolic link", "never follows links in .adbvoice/")
    assert untouched(documents, before)
    assert archived_files(archive) == notes_before


def test_a_state_folder_of_another_user_is_refused(phone, backed_up_once):
    archive = backed_up_once
    os.chown(archive / ".adbvoice" / "tmp", 12345, 12345)
    result = run_cli("backup", archive, "--tcp", phone.address)
    one_line_error(result, 69, "tmp belongs to user 12345, not to you")


def test_a_fifo_or_a_link_at_a_notes_name_is_never_opened_and_the_note_is_kept_beside_it(phone, archive, documents):
    dry = run_cli("backup", archive, "--tcp", phone.address, "--dry-run", "--json")
    planned = [p["archive_path"] for p in json.loads(dry.stdout)["planned"]]
    fifo, link = archive / planned[0], archive / planned[1]
    fifo.parent.mkdir(parents=True, exist_ok=True)
    link.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    link.symlink_to(documents / "taxes.pdf")
    before = tree_listing(documents)

    # A process, with a timeout: a FIFO once hung the run forever, deaf to SIGTERM.
    result = run_process("backup", archive, "--tcp", phone.address, "--json", timeout=60)

    assert result.exit_code in (0, 3), result.stderr
    archived = {n["archive_path"] for n in json.loads(result.stdout)["new_notes"]}
    for planted in (fifo, link):
        kept = planted.relative_to(archive).as_posix().replace(".opus", "-2.opus")
        assert kept in archived, (kept, sorted(archived))
    assert os.path.islink(link) and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert untouched(documents, before)


def test_an_archive_folder_others_may_write_in_or_of_another_user_is_refused_one_others_may_read_is_named(
    phone, tmp_path
):
    archive = tmp_path / "shared"
    archive.mkdir()
    os.chmod(archive, 0o777)
    one_line_error(run_cli("backup", archive, "--tcp", phone.address), 70, "is writable by other users (mode 0777)",
                   f"chmod 700 {archive}")
    assert list(archive.iterdir()) == []  # nothing created in it

    os.chmod(archive, 0o755)
    readable = run_cli("backup", archive, "--tcp", phone.address)
    assert readable.exit_code == 3
    assert f"{archive} is readable by other users (mode 0755): `chmod 700 {archive}` keeps" in readable.stderr

    os.chmod(archive, 0o700)
    os.chown(archive, 12345, 12345)
    one_line_error(run_cli("backup", archive, "--tcp", phone.address), 70, "belongs to user 12345, not to you")


class FakeAdbServer:
    """Something on the adb server's port that answers each request from a script."""

    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with client:
                length = int(client.recv(4), 16)
                request = client.recv(length)
                client.sendall(self.answers.get(request.split(b":")[0] + b":" + request.split(b":")[-1], b"FAIL0000"))

    def close(self) -> None:
        self.sock.close()


def devices(text: bytes) -> bytes:
    return b"OKAY" + b"%04x" % len(text) + text


@pytest.mark.parametrize("answers, said", [
    ({b"host:devices-l": b"OKAYzzzz"}, "a length that is not four hex digits: b'zzzz'"),
    ({b"host:devices-l": devices(b"EMU1 device model:x\n"), b"host-serial:features": b"FAIL0007offline"},
     "FAIL: offline"),
], ids=["non-hex length", "FAIL from the features query"])
def test_an_adb_server_breaking_its_protocol_is_a_clear_error(answers, said, archive, monkeypatch):
    server = FakeAdbServer(answers)
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(server.port))
    try:
        result = run_cli("backup", archive)
    finally:
        server.close()
    one_line_error(result, 71, f"the adb server on port {server.port} broke adb's protocol ({said})",
                   "adb kill-server")
