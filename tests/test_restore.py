"""Someone whose phone lost its voice notes puts them back: `restore` pushes the archived
notes to the paths WhatsApp plays them from, each verified by the phone before it takes its
name, never replacing a different file, and a cut-off restore leaves no half file behind."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone, Faults, LinkProfile
from adbvoice.emulator.phonetree import build_phone_tree
from adbvoice.restore.pushing import TEMP_NAME
from tests.conftest import run_cli

VOICE = "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes"
BUSINESS = "Android/media/com.whatsapp.w4b/WhatsApp Business/Media/WhatsApp Business Voice Notes"
LEGACY = "WhatsApp/Media/WhatsApp Voice Notes"


def phone_files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below the phone's /sdcard: its bytes and its time."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), int(p.stat().st_mtime))
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if TEMP_NAME.fullmatch(os.fsencode(p.name))]


def archived_notes(archive: Path) -> list[dict]:
    return json.loads(run_cli("ls", archive, "--json").stdout)


def wipe(root: Path) -> dict[str, tuple[bytes, int]]:
    """Delete the voice-note folders (a reinstalled WhatsApp); what was in them, notes only."""
    before = phone_files(root)
    for folder in (VOICE, BUSINESS):
        shutil.rmtree(root / folder)
    return {path: held for path, held in before.items() if path.startswith((VOICE, BUSINESS))
            and not path.endswith(".nomedia")}


@pytest.fixture
def backed_up_phone(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=24)
    with EmulatedPhone(tree.root) as phone:
        backed = run_cli("backup", archive, "--tcp", phone.address)
        assert backed.exit_code in (0, 3), backed.stderr
        yield phone, tree


def test_a_wiped_phone_gets_every_note_back_byte_for_byte_at_its_old_path_with_its_old_time(backed_up_phone, archive):
    phone, tree = backed_up_phone
    lost = wipe(tree.root)
    assert len(lost) > 10

    result = run_cli("restore", archive, "--tcp", phone.address)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"restored {len(lost)} notes (")
    assert result.stdout.count("\n") == 1
    after = phone_files(tree.root)
    assert {path: after.get(path) for path in lost} == lost  # bytes and time
    assert temp_files(tree.root) == []
    again = run_cli("backup", archive, "--tcp", phone.address)
    assert again.exit_code == 0 and again.stdout.startswith("no new voice notes"), again.stdout
    twice = run_cli("restore", archive, "--tcp", phone.address, "--json")
    assert twice.exit_code == 0
    fates = {n["fate"] for n in json.loads(twice.stdout)["notes"]}
    assert fates == {"already there"}


def test_a_different_file_at_a_notes_path_is_left_alone_and_reported(backed_up_phone, archive):
    phone, tree = backed_up_phone
    lost = wipe(tree.root)
    taken = sorted(lost)[0]
    (tree.root / taken).parent.mkdir(parents=True)
    (tree.root / taken).write_bytes(b"the user's own, newer file")

    result = run_cli("restore", archive, "--tcp", phone.address)

    assert result.exit_code == 3, result.stderr
    assert (tree.root / taken).read_bytes() == b"the user's own, newer file"
    assert f"/sdcard/{taken}: left alone: a different file stands at its path on the phone" in result.stderr
    assert "1 left alone" in result.stdout
    after = phone_files(tree.root)
    assert all(after[path] == held for path, held in lost.items() if path != taken)


def test_a_dry_run_says_where_each_note_would_go_and_pushes_nothing(backed_up_phone, archive):
    phone, tree = backed_up_phone
    wipe(tree.root)
    before = phone_files(tree.root)

    result = run_cli("restore", archive, "--tcp", phone.address, "--dry-run", "--source", "business")

    assert result.exit_code == 0, result.stderr
    assert phone_files(tree.root) == before
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("dry run: would restore ")
    assert lines[:-1] and all(line.startswith("would restore") and "Business" in line for line in lines[:-1])
    unknown = run_cli("restore", archive, "--tcp", phone.address, "--note", "99999")
    assert unknown.exit_code == 25 and "no note '99999' in the archive's catalog" in unknown.stderr


def test_a_note_from_an_old_phone_goes_to_the_layout_the_new_phone_uses(tmp_path, archive):
    old = tmp_path / "old"
    (old / LEGACY / "202110").mkdir(parents=True)
    note = old / LEGACY / "202110" / "PTT-20211010-WA0001.opus"
    shutil.copyfile(Path(__file__).parent.parent / "fixtures" / "audio" / "voice-4s.opus", note)
    os.utime(note, (1633860000, 1633860000))
    with EmulatedPhone(old, android_release="10", serial="OLD1") as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0
    for release, expected in (("14", f"{VOICE}/202110/PTT-20211010-WA0001.opus"),
                              ("10", f"{LEGACY}/202110/PTT-20211010-WA0001.opus")):
        new = tmp_path / f"new-{release}"
        new.mkdir()
        with EmulatedPhone(new, android_release=release, serial=f"NEW{release}") as phone:
            result = run_cli("restore", archive, "--tcp", phone.address)
        assert result.exit_code == 0, result.stderr
        assert phone_files(new) == {expected: (note.read_bytes(), 1633860000)}


def test_a_full_phone_stops_the_restore_with_nothing_half_written_and_the_next_run_completes(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=24)
    disk = tmp_path / "phone-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        shutil.copytree(tree.root, disk, dirs_exist_ok=True, symlinks=True)
        with EmulatedPhone(disk) as phone:
            assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)
            lost = wipe(disk)
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            (disk / "filler").write_bytes(b"\0" * (free - 300_000))

            full = run_cli("restore", archive, "--tcp", phone.address)

            assert full.exit_code == 36, full.stderr
            assert "is full (write failed: No space left on device" in full.stderr
            assert "the next run puts back the rest" in full.stderr
            after = phone_files(disk)
            assert temp_files(disk) == []
            restored = [path for path in lost if path in after]
            assert all(after[path] == lost[path] for path in restored)  # whole, or not there
            assert len(restored) < len(lost)

            (disk / "filler").unlink()
            rest = run_cli("restore", archive, "--tcp", phone.address)
            assert rest.exit_code == 0, rest.stderr
            assert {path: phone_files(disk).get(path) for path in lost} == lost
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_folder_the_phone_will_not_write_is_reported_and_the_others_are_restored(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=24)
    with EmulatedPhone(tree.root, faults=Faults(read_only_paths=f"*/{BUSINESS.rsplit('/', 1)[1]}/*")) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)
        lost = wipe(tree.root)

        result = run_cli("restore", archive, "--tcp", phone.address)

        assert phone.faults_fired["read_only"] > 0
    assert result.exit_code == 37, result.stderr
    assert "does not let adbvoice write to /sdcard/Android/media/com.whatsapp.w4b/" in result.stderr
    after = phone_files(tree.root)
    assert all(after[path] == held for path, held in lost.items() if path.startswith(VOICE))
    assert not any(path.startswith(BUSINESS) and not path.endswith(".nomedia") for path in after)
    assert temp_files(tree.root) == []


def test_a_phone_without_a_shell_gets_nothing(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=4)
    with EmulatedPhone(tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)
    wipe(tree.root)
    before = phone_files(tree.root)
    with EmulatedPhone(tree.root, shell=False) as phone:
        result = run_cli("restore", archive, "--tcp", phone.address)
    assert result.exit_code == 35
    assert "cannot check a pushed note before it takes its name: nothing restored" in result.stderr
    assert phone_files(tree.root) == before


def test_a_connection_dropped_mid_push_leaves_temp_files_only_and_the_next_run_sweeps_them(backed_up_phone, archive):
    phone, tree = backed_up_phone
    lost = wipe(tree.root)

    with EmulatedPhone(tree.root, faults=Faults(drop_push_after_bytes=300_000)) as dropping:
        cut = run_cli("restore", archive, "--tcp", dropping.address)
        assert dropping.faults_fired["drop_push"] == 1
    assert cut.exit_code == 17, cut.stderr
    assert temp_files(tree.root)  # the half-pushed note, under its temp name only
    after = phone_files(tree.root)
    assert all(after[path] == lost[path] for path in lost if path in after)

    rest = run_cli("restore", archive, "--tcp", phone.address)
    assert rest.exit_code == 0, rest.stderr
    assert temp_files(tree.root) == []
    assert {path: phone_files(tree.root).get(path) for path in lost} == lost


def test_ctrl_c_stops_the_restore_cleanly_and_the_rerun_sweeps_and_completes(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=80)
    with EmulatedPhone(tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)
    lost = wipe(tree.root)
    with EmulatedPhone(tree.root, link=LinkProfile(rtt_s=0.002, bandwidth_Bps=1_000_000)) as phone:
        process = subprocess.Popen([sys.executable, "-m", "adbvoice", "restore", str(archive), "--tcp", phone.address],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not temp_files(tree.root) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the notes are on their way
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr
        after = phone_files(tree.root)
        assert all(after[path] == lost[path] for path in lost if path in after)
        assert len([path for path in lost if path in after]) < len(lost)

        rest = run_cli("restore", archive, "--tcp", phone.address)
    assert rest.exit_code == 0, rest.stderr
    assert temp_files(tree.root) == []
    assert {path: phone_files(tree.root).get(path) for path in lost} == lost


def test_on_a_terminal_a_progress_bar_shows_the_notes_going_back(backed_up_phone, archive):
    phone, tree = backed_up_phone
    lost = wipe(tree.root)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal has a size
    process = subprocess.Popen([sys.executable, "-m", "adbvoice", "restore", str(archive), "--tcp", phone.address],
                               stdout=subprocess.PIPE, stderr=terminal, text=True)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    stdout = process.communicate(timeout=60)[0]
    os.close(controller)
    assert process.returncode == 0
    assert f"/{len(lost)} notes" in shown.decode("utf-8", "replace")
    assert stdout.startswith(f"restored {len(lost)} notes")


def test_restore_wifi_finds_the_paired_phone_by_mdns(tmp_path, archive, home):
    from tests.test_wifi import paired, wifi_phone

    tree = build_phone_tree(tmp_path / "sdcard", notes=8)
    with wifi_phone(tree, home, tmp_path / "phone-state") as phone:
        paired(phone)
        assert run_cli("backup", archive, "--wifi").exit_code in (0, 3)
        lost = wipe(tree.root)
        result = run_cli("restore", archive, "--wifi", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["restored"] == len(lost)
    assert {path: phone_files(tree.root).get(path) for path in lost} == lost


def test_with_json_an_error_is_a_json_document_too(tmp_path):
    result = run_cli("restore", tmp_path / "no-archive", "--tcp", "127.0.0.1:1", "--json")
    assert result.exit_code == 24
    assert json.loads(result.stdout)["error"]["exit_code"] == 24
