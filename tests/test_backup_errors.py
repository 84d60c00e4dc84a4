"""Everything a user can get wrong, or that can go wrong around them: one clear line, its own
exit code, and nothing in the archive lost or half-written."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import usb1
from adb_shell.exceptions import UsbReadFailedError

from adbvoice.archive.folder import Archive
from adbvoice.emulator import AuthPolicy, EmulatedPhone, Faults, LinkProfile
from adbvoice.emulator.phonetree import PhoneNote, PhoneTree, build_phone_tree
from adbvoice.phone import usb
from tests.conftest import Outcome, archived_files, free_port, run_cli, run_process


def one_line_error(outcome, code: int, *needles: str) -> None:
    assert outcome.exit_code == code, (outcome.stdout, outcome.stderr)
    lines = outcome.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("adbvoice: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], outcome.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "Traceback" not in outcome.stderr


def assert_archive_consistent(archive: Path, tree) -> None:
    """Every file in the archive is a whole note from the phone, and the catalog lists
    exactly the files there are, with their true hashes."""
    files = archived_files(archive)
    phone = {n.sha256 for n in tree.notes if n.is_note}
    hashes = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    assert set(hashes.values()) <= phone
    rows = json.loads(run_cli("ls", archive, "--json").stdout)
    assert {r["archive_path"]: r["sha256"] for r in rows} == hashes
    assert list((archive / ".adbvoice" / "tmp").iterdir()) == []


# --- finding the phone -----------------------------------------------------------


class BridgedUsb:
    """An adb-shell UsbTransport stand-in whose bulk transfers go to the emulated phone over
    TCP: the USB code path (enumeration, choosing, errors, UsbPipe) runs for real above it."""

    def __init__(self, serial: str, address: str | None = None, fail_with: Exception | None = None) -> None:
        self.serial_number = serial
        self._address = address
        self._fail_with = fail_with
        self._sock: socket.socket | None = None

    def connect(self, timeout):
        if self._fail_with:
            raise self._fail_with
        host, port = self._address.split(":")
        self._sock = socket.create_connection((host, int(port)), timeout=timeout)

    def bulk_write(self, data, timeout):
        self._sock.sendall(data)
        return len(data)

    def bulk_read(self, numbytes, timeout):
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(numbytes)
        except TimeoutError as exc:
            raise UsbReadFailedError("timed out", usb1.USBErrorTimeout()) from exc
        if not data:  # the phone went away: libusb reports the device gone, never an empty read
            raise UsbReadFailedError("device gone", usb1.USBErrorNoDevice())
        return data

    def close(self):
        if self._sock:
            self._sock.close()


def plug_in(monkeypatch, *transports) -> None:
    monkeypatch.setattr(usb, "transports", lambda: list(transports))


def test_with_no_phone_plugged_in_the_user_is_told_how_to_connect_one(archive, monkeypatch):
    plug_in(monkeypatch)
    one_line_error(run_cli("backup", archive), 10, "USB debugging", "--tcp")
    assert not (archive / ".adbvoice" / "catalog.sqlite").exists() or run_cli("ls", archive).stdout == ""


def test_a_usb_phone_is_backed_up_through_adb_shells_transport(phone, phone_tree, archive, monkeypatch):
    plug_in(monkeypatch, BridgedUsb("R58M12345", phone.address))
    result = run_cli("backup", archive, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 3 and len(report["new_notes"]) == sum(
        1 for n in phone_tree.notes if n.is_note and n.kind != "audio"
    )
    assert report["device"] == "Pixel 7 (EMU0001)"


def test_several_phones_need_a_serial(phone, archive, monkeypatch):
    plug_in(monkeypatch, BridgedUsb("AAA111", phone.address), BridgedUsb("BBB222", phone.address))
    one_line_error(run_cli("backup", archive), 11, "AAA111", "BBB222", "--serial")
    assert run_cli("backup", archive, "--serial", "BBB222").exit_code == 3
    one_line_error(run_cli("backup", archive, "--serial", "CCC333"), 10, "CCC333")


def test_usb_permission_denied_prints_the_udev_fix(archive, monkeypatch):
    plug_in(monkeypatch, BridgedUsb("AAA111", fail_with=usb1.USBErrorAccess()))
    one_line_error(run_cli("backup", archive), 14, "udev", "plugdev")


def test_usb_busy_says_what_holds_the_phone(archive, monkeypatch):
    plug_in(monkeypatch, BridgedUsb("AAA111", fail_with=usb1.USBErrorBusy()))
    one_line_error(run_cli("backup", archive), 15, "adb kill-server")


def test_an_unreachable_wifi_address_is_named(archive):
    one_line_error(run_cli("backup", archive, "--tcp", f"127.0.0.1:{free_port()}"), 16, "refused", "tcpip")
    one_line_error(run_cli("backup", archive, "--tcp", "127.0.0.1:99999"), 2, "port")


@pytest.fixture
def adb_server(home):
    """Google's adb server from Debian, private to this test (its own port and HOME)."""
    env = dict(os.environ)

    def adb(*args):
        return subprocess.run(["adb", *args], env=env, capture_output=True, text=True, timeout=30)

    assert adb("start-server").returncode == 0, "Debian's adb is needed: run .ci/install-tools"
    yield adb
    adb("kill-server")


def test_a_phone_held_by_googles_adb_server_is_backed_up_through_it(phone, phone_tree, archive, adb_server):
    assert "connected" in adb_server("connect", phone.address).stdout
    result = run_cli("backup", archive, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 3, result.stderr
    assert len(report["new_notes"]) == sum(1 for n in phone_tree.notes if n.is_note and n.kind != "audio")
    assert_archive_consistent(archive, phone_tree)


# --- authorization -----------------------------------------------------------------


def test_a_phone_that_refuses_this_computer_says_what_to_do(phone_tree, archive):
    with EmulatedPhone(phone_tree.root, auth=AuthPolicy(mode="refuse")) as phone:
        one_line_error(run_cli("backup", archive, "--tcp", phone.address), 12, "refused", "Allow")


def test_the_user_is_asked_to_tap_allow_and_the_backup_waits_for_it(phone_tree, archive):
    with EmulatedPhone(phone_tree.root, auth=AuthPolicy(mode="pending", pending_seconds=1.0)) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address)
    assert result.exit_code == 3, result.stderr
    assert result.stderr.count('tap "Allow"') == 1
    assert len(phone.trusted_keys) == 1


def test_nobody_tapping_allow_ends_after_the_auth_timeout(phone_tree, archive):
    with EmulatedPhone(phone_tree.root, auth=AuthPolicy(mode="pending", pending_seconds=60)) as phone:
        started = time.monotonic()
        result = run_cli("backup", archive, "--tcp", phone.address, "--auth-timeout", "1")
    assert time.monotonic() - started < 15
    assert result.exit_code == 13
    assert "nobody tapped Allow" in result.stderr.splitlines()[-1]


def test_a_phone_that_already_trusts_the_adb_key_asks_nothing(phone_tree, archive, home):
    public = (home / ".android" / "adbkey.pub").read_text()
    with EmulatedPhone(phone_tree.root, auth=AuthPolicy(mode="keys", keys=(public,))) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address)
    assert result.exit_code == 3 and "Allow" not in result.stderr


def test_a_missing_adb_key_is_created_private_and_a_broken_one_is_reported(phone, archive, tmp_path):
    key = tmp_path / "keys" / "adbkey"
    assert run_cli("backup", archive, "--tcp", phone.address, "--adb-key", key).exit_code == 3
    assert oct(key.stat().st_mode & 0o777) == "0o600" and key.with_suffix(".pub").exists()
    key.write_text("not a key")
    one_line_error(run_cli("backup", archive, "--tcp", phone.address, "--adb-key", key), 19, str(key))


# --- the phone's contents ------------------------------------------------------------


def test_a_phone_without_whatsapp_names_the_places_checked(tmp_path, archive):
    empty = tmp_path / "bare-sdcard"
    (empty / "DCIM").mkdir(parents=True)
    with EmulatedPhone(empty) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address)
    one_line_error(result, 18, "WhatsApp Voice Notes", "WhatsApp Business Voice Notes", "installed")


def test_hostile_names_never_write_outside_the_archive(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=6, business=False, legacy=False, broken=False)
    week = next(n.local_path.parent for n in tree.notes if n.kind == "voice" and n.is_note)
    sample = next(n.local_path for n in tree.notes if n.kind == "voice" and n.is_note).read_bytes()
    hostile = [b"new\nline.opus", b"bad\xff\xfebytes.opus", b"-rf.opus", b"..opus", b"x" * 250 + b".opus",
               b"tab\there.opus", b"back\\slash.opus"]
    for index, name in enumerate(hostile):
        with open(os.path.join(os.fsencode(week), name), "wb") as handle:
            handle.write(sample + bytes([index]))
    (week / "escape.opus").symlink_to("/etc/passwd")
    (week / "outside").symlink_to("/")
    outside = tmp_path / "outside-marker"
    outside.mkdir()
    before = sorted(p for p in tmp_path.rglob("*") if archive not in p.parents and p != archive)

    with EmulatedPhone(tree.root) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address, "--json")

    after = sorted(p for p in tmp_path.rglob("*") if archive not in p.parents and p != archive)
    assert after == before
    report = json.loads(result.stdout)
    new_names = {Path(n["archive_path"]).name for n in report["new_notes"]}
    assert {"new_line.opus", "bad__bytes.opus", "-rf.opus", "..opus", "tab_here.opus", "back_slash.opus"} <= new_names
    assert any(len(name) < 250 and name.startswith("xxxx") for name in new_names)
    warnings = "\n".join(report["warnings"])
    assert "escape.opus: a symbolic link, not followed" in warnings
    assert "/outside: a symbolic link, not followed" in warnings
    assert "not usable as a file name" in warnings
    raw = [r for r in json.loads(run_cli("ls", archive, "--json").stdout) if r["phone_path_hex"]]
    assert len(raw) == 1 and bytes.fromhex(raw[0]["phone_path_hex"]).endswith(b"bad\xff\xfebytes.opus")


def first_voice_note(tree: PhoneTree) -> PhoneNote:
    return next(n for n in tree.notes if n.kind == "voice" and n.is_note)


def back_up_with(tree: PhoneTree, archive: Path, faults: Faults) -> tuple[Outcome, Counter[str]]:
    """One backup from a phone with `faults`: what the CLI said, and which faults fired."""
    with EmulatedPhone(tree.root, faults=faults) as phone:
        return run_cli("backup", archive, "--tcp", phone.address), phone.faults_fired


def test_a_file_the_phone_refuses_is_reported_and_the_rest_copied(phone_tree, archive):
    victim = first_voice_note(phone_tree)
    result, fired = back_up_with(phone_tree, archive, Faults(fail_paths=victim.phone_path))
    assert fired["fail_path"] == 1
    assert result.exit_code == 4
    assert f"{victim.phone_path}: the phone refused to send it (open failed: Permission denied)" in result.stderr
    hashes = {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()}
    expected = {n.sha256 for n in phone_tree.notes if n.is_note and n.kind != "audio"} - {victim.sha256}
    assert hashes == expected


def test_a_note_still_growing_is_copied_once_it_is_stable(phone_tree, archive):
    victim = first_voice_note(phone_tree)
    result, fired = back_up_with(phone_tree, archive, Faults(grow_paths=victim.phone_path, grow_times=1))
    assert fired["grow"] == 1
    grown = hashlib.sha256(victim.local_path.read_bytes()).hexdigest()
    assert grown in {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()}
    assert victim.sha256 not in {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()}
    assert result.exit_code == 3  # only the broken-audio warnings


def test_a_note_that_keeps_growing_is_left_for_the_next_run(phone_tree, archive):
    victim = first_voice_note(phone_tree)
    result, fired = back_up_with(phone_tree, archive, Faults(grow_paths=victim.phone_path, grow_times=50))
    assert fired["grow"] == 3
    assert f"{victim.phone_path}: kept changing while being copied" in result.stderr
    assert_left_for_the_next_run(victim, phone_tree, archive)


def test_a_note_damaged_on_the_way_is_pulled_again_and_archived_intact(phone_tree, archive):
    victim = first_voice_note(phone_tree)
    result, fired = back_up_with(phone_tree, archive, Faults(corrupt_paths=victim.phone_path, corrupt_times=1))
    assert fired["corrupt"] == 1
    archived = {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()}
    assert victim.sha256 in archived
    assert result.exit_code == 3  # only the broken-audio warnings


def test_a_note_damaged_at_every_attempt_is_reported_and_never_archived(phone_tree, archive):
    victim = first_voice_note(phone_tree)
    result, fired = back_up_with(phone_tree, archive, Faults(corrupt_paths=victim.phone_path, corrupt_times=50))
    assert fired["corrupt"] == 3
    assert f"{victim.phone_path}: did not arrive intact" in result.stderr
    assert result.exit_code == 4  # some notes could not be backed up
    catalogued = json.loads(run_cli("ls", archive, "--json").stdout)
    assert len(archived_files(archive)) == len(catalogued)  # no damaged copy lies in the archive
    assert_left_for_the_next_run(victim, phone_tree, archive)


def assert_left_for_the_next_run(victim, phone_tree, archive) -> None:  # noqa: ANN001
    """Not in the catalog, and the next backup, from a phone that behaves, copies just it."""
    listed = json.loads(run_cli("ls", archive, "--json").stdout)
    assert victim.phone_path not in {row["phone_path"] for row in listed}
    with EmulatedPhone(phone_tree.root) as phone:
        later = run_cli("backup", archive, "--tcp", phone.address, "--json")
    assert [n["phone_path"] for n in json.loads(later.stdout)["new_notes"]] == [victim.phone_path]


# --- the phone goes away -------------------------------------------------------------


def test_a_dropped_connection_keeps_what_was_archived_and_the_next_run_finishes(phone_tree, archive):
    total = sum(n.size for n in phone_tree.notes if n.is_note and n.kind != "audio")
    # A link slow enough that groups of notes are published (a group gathers for at most a
    # second) before the cable is pulled at 2/3 of the copy.
    link = LinkProfile(rtt_s=0.001, bandwidth_Bps=600_000)
    with EmulatedPhone(phone_tree.root, faults=Faults(drop_after_bytes=total * 2 // 3), link=link) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address)
        assert phone.faults_fired["drop"] == 1
        one_line_error(result, 17, "lost the phone", "run again")
        assert_archive_consistent(archive, phone_tree)
        partial = len(archived_files(archive))
        again = run_cli("backup", archive, "--tcp", phone.address)
    assert 0 < partial < sum(1 for n in phone_tree.notes if n.is_note and n.kind != "audio")
    assert again.exit_code == 3
    assert_archive_consistent(archive, phone_tree)
    assert len(archived_files(archive)) == sum(1 for n in phone_tree.notes if n.is_note and n.kind != "audio")


def test_a_phone_that_stops_answering_times_out_instead_of_hanging(phone_tree, archive):
    with EmulatedPhone(phone_tree.root, faults=Faults(stall_after_bytes=200_000)) as phone:
        started = time.monotonic()
        result = run_cli("backup", archive, "--tcp", phone.address, "--io-timeout", "1")
        assert phone.faults_fired["stall"] == 1
    assert time.monotonic() - started < 20
    one_line_error(result, 17, "no answer from the phone for 1 s")
    assert_archive_consistent(archive, phone_tree)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_mid_copy_leaves_nothing_partial_and_the_next_run_resumes(long_copy_tree, archive, sig):
    slow = LinkProfile(rtt_s=0.002, bandwidth_Bps=600_000)
    with EmulatedPhone(long_copy_tree.root, link=slow) as phone:
        process = subprocess.Popen(
            [sys.executable, "-m", "adbvoice", "backup", str(archive), "--tcp", phone.address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        while not archived_files(archive) and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("adbvoice: interrupted")
    assert "Traceback" not in err
    files = archived_files(archive)
    assert 0 < len(files) < sum(1 for n in long_copy_tree.notes if n.is_note and n.kind != "audio")
    with EmulatedPhone(long_copy_tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 3
    assert_archive_consistent(archive, long_copy_tree)


# --- the archive's side ----------------------------------------------------------------


def test_an_archive_path_that_cannot_be_created_is_refused(phone, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(run_cli("backup", blocker / "archive", "--tcp", phone.address), 20, str(blocker))


def test_a_second_run_on_a_locked_archive_exits_at_once_saying_who_holds_it(phone, archive):
    locked = Archive.open(archive, create=True)
    with locked.lock():
        started = time.monotonic()
        result = run_process("backup", archive, "--tcp", phone.address)
    assert time.monotonic() - started < 10
    one_line_error(result, 22, f"pid {os.getpid()}")
    assert phone.connections_accepted == 0


def test_a_full_disk_stops_the_run_cleanly_and_the_backup_completes_after_space_is_freed(phone, phone_tree, small_disk):
    archive = small_disk / "archive"
    result = run_cli("backup", archive, "--tcp", phone.address)
    one_line_error(result, 21, "disk is full")
    assert_archive_consistent(archive, phone_tree)
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 3
    assert_archive_consistent(archive, phone_tree)
    assert len(archived_files(archive)) == sum(1 for n in phone_tree.notes if n.is_note and n.kind != "audio")


def test_bad_layouts_and_non_archives_get_their_own_codes(phone, tmp_path):
    one_line_error(run_cli("backup", tmp_path / "a", "--tcp", phone.address, "--layout", "../{name}"), 23, "..")
    one_line_error(run_cli("ls", tmp_path), 24, "not an adbvoice archive")
    broken = tmp_path / "broken"
    (broken / ".adbvoice").mkdir(parents=True)
    (broken / ".adbvoice" / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    one_line_error(run_cli("ls", broken), 24, "unreadable")
