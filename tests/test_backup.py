"""A person backs up their phone: everything new arrives once, verified, dated and catalogued."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import shutil
import stat
import struct
import subprocess
import sys
import termios
from pathlib import Path

from adbvoice.emulator import EmulatedPhone, Faults
from adbvoice.emulator.phonetree import add_notes, build_phone_tree
from tests.conftest import archived_files, run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"


def expected_notes(tree, include_audio=False):
    return [n for n in tree.notes if n.is_note and (include_audio or n.kind != "audio")]


def ls_json(archive):
    listed = run_cli("ls", archive, "--json")
    assert listed.exit_code == 0, listed.stderr
    return json.loads(listed.stdout)


def test_every_voice_note_arrives_byte_identical_in_the_dated_layout(phone, phone_tree, archive):
    result = run_cli("backup", archive, "--tcp", phone.address)

    notes = expected_notes(phone_tree)
    files = archived_files(archive)
    assert result.exit_code == 3, result.stderr  # the phone holds deliberately broken notes
    assert sorted(hashlib.sha256(b).hexdigest() for b in files.values()) == sorted(n.sha256 for n in notes)
    for relpath in files:
        year, month, day, name = relpath.split("/")
        assert name.startswith(("PTT-", "AUD-")) and name[4:12] == f"{year}{month}{day}"
    assert f"{len(notes)} new voice notes" in result.stdout
    assert result.stdout.count("\n") == 1  # not a terminal: one summary line


def test_the_catalog_holds_every_field_with_real_durations(phone, phone_tree, archive):
    run_cli("backup", archive, "--tcp", phone.address)

    rows = ls_json(archive)
    by_sha = {n.sha256: n for n in expected_notes(phone_tree)}
    assert len(rows) == len(by_sha)
    for row in rows:
        note = by_sha[row["sha256"]]
        assert row["phone_path"] == note.phone_path
        assert (row["size"], row["phone_mtime"]) == (note.size, note.mtime)
        assert row["device_serial"] == "EMU0001" and row["device_model"] == "Pixel 7"
        assert row["recorded_on"] and row["archived_at"] and row["source"]
        if note.kind == "broken":
            assert row["audio_error"], row
        else:
            assert row["audio_error"] is None
            assert row["codec"] == "opus" and row["sample_rate"] == 16000 and row["channels"] == 1
            assert row["duration_s"] > 0.5 and row["bitrate"] > 0


def test_a_second_run_copies_nothing_and_the_next_one_exactly_the_new_notes(phone, phone_tree, archive):
    first = run_cli("backup", archive, "--tcp", phone.address)
    total = len(expected_notes(phone_tree))

    again = run_cli("backup", archive, "--tcp", phone.address)
    assert again.exit_code == 0
    assert again.stdout.strip() == f"no new voice notes, {total} already archived, 0 warnings"

    added = add_notes(phone_tree, 3)
    third = run_cli("backup", archive, "--tcp", phone.address, "--json")
    report = json.loads(third.stdout)
    assert third.exit_code == 0 and first.exit_code == 3
    assert sorted(n["phone_path"] for n in report["new_notes"]) == sorted(n.phone_path for n in added if n.is_note)
    assert report["already"] == total


def test_whatsapp_audio_is_copied_only_when_asked(phone, phone_tree, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    assert not any("AUD-" in p for p in archived_files(archive))

    run_cli("backup", archive, "--tcp", phone.address, "--include-audio")
    audio = [n for n in phone_tree.notes if n.kind == "audio" and n.is_note]
    hashes = {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()}
    assert audio and all(n.sha256 in hashes for n in audio)
    assert not any(p.endswith(".txt") for p in archived_files(archive))


def test_forwarded_aac_audio_is_catalogued_as_aac(phone, phone_tree, archive):
    # ADTS AAC has no magic number mutagen trusts: it goes by the file's extension.
    audio_folder = phone_tree.root / "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Audio"
    shutil.copy(FIXTURES / "audio.aac", audio_folder / "AUD-20210505-WA0007.aac")
    assert run_cli("backup", archive, "--tcp", phone.address, "--include-audio").exit_code == 3
    listed = json.loads(run_cli("ls", archive, "--format", "json").stdout)
    aac = next(n for n in listed if n["archive_path"].endswith("AUD-20210505-WA0007.aac"))
    assert (aac["codec"], aac["audio_error"]) == ("aac", None) and aac["duration_s"] > 0


def test_same_name_different_content_keeps_both(phone, phone_tree, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    names = [p.rsplit("/", 1)[-1] for p in archived_files(archive)]
    suffixed = [n for n in names if n.count("-") == 3]
    assert suffixed, names
    for name in suffixed:
        stem, ext = name.rsplit(".", 1)
        assert f"{stem.rsplit('-', 1)[0]}.{ext}" in names


def test_a_note_moved_on_the_phone_is_not_archived_twice(phone, phone_tree, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    before = archived_files(archive)
    note = next(n for n in phone_tree.notes if n.kind == "voice" and n.is_note)
    moved = note.local_path.parent / "Sent" / note.local_path.name
    moved.parent.mkdir(exist_ok=True)
    os.replace(note.local_path, moved)

    result = run_cli("backup", archive, "--tcp", phone.address, "--json")

    report = json.loads(result.stdout)
    assert report["new_notes"] == [] and report["duplicates"] == 1
    assert archived_files(archive) == before


def test_a_note_deleted_on_the_phone_stays_in_the_archive(phone, phone_tree, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    before = archived_files(archive)
    for note in expected_notes(phone_tree)[:5]:
        note.local_path.unlink()

    result = run_cli("backup", archive, "--tcp", phone.address)

    assert result.exit_code == 0
    assert archived_files(archive) == before


def test_the_archive_is_readable_by_its_owner_only(phone, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    for path in [archive, *archive.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def test_a_dry_run_shows_what_would_be_copied_and_changes_nothing(phone, phone_tree, archive):
    result = run_cli("backup", archive, "--tcp", phone.address, "--dry-run")

    assert result.exit_code == 0
    assert not archive.exists()
    planned = [line for line in result.stdout.splitlines() if line.startswith("would copy ")]
    assert len(planned) == len(expected_notes(phone_tree))
    assert "-> 20" in planned[0]


def test_quiet_prints_nothing_when_all_is_well(phone, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    quiet = run_cli("backup", archive, "--tcp", phone.address, "--quiet")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_json_is_one_document_with_counts_warnings_and_new_notes(phone, phone_tree, archive):
    result = run_cli("backup", archive, "--tcp", phone.address, "--json")
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.exit_code == 3
    assert len(report["new_notes"]) == len(expected_notes(phone_tree))
    assert len(report["warnings"]) == 3 and report["errors"] == []
    assert result.stderr == ""


def test_a_custom_layout_is_followed(phone, archive):
    result = run_cli("backup", archive, "--tcp", phone.address, "--layout", "{device}/{source}/{isoyear}-W{week}/{name}")
    assert result.exit_code == 3
    top = {p.split("/")[0] for p in archived_files(archive)}
    assert top == {"Pixel_7"}


def test_ls_lists_one_line_per_note(phone, phone_tree, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    listed = run_cli("ls", archive)
    lines = listed.stdout.splitlines()
    assert len(lines) == len(expected_notes(phone_tree))
    assert any("unreadable" in line for line in lines)
    assert all(line[:4].isdigit() for line in lines)


def test_a_phone_without_a_shell_is_listed_over_sync_with_the_same_result(phone_tree, tmp_path):
    with_shell, without_shell = tmp_path / "a", tmp_path / "b"
    with EmulatedPhone(phone_tree.root) as phone:
        first = run_cli("backup", with_shell, "--tcp", phone.address, "--json")
    with EmulatedPhone(phone_tree.root, shell=False) as phone:
        second = run_cli("backup", without_shell, "--tcp", phone.address, "--json")
    assert json.loads(first.stdout)["listed_by"] == "shell"
    assert json.loads(second.stdout)["listed_by"] == "sync"
    assert archived_files(with_shell) == archived_files(without_shell)


def test_the_demo_works_without_any_android_tools(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name, *a, **k: None)
    result = run_cli("demo", tmp_path / "demo")
    assert result.exit_code == 0, result.stderr
    assert "new voice notes" in result.stdout
    again = run_cli("demo", tmp_path / "demo")
    assert "no new voice notes" in again.stdout


def test_every_phone_tree_size_gives_unique_notes(tmp_path):
    tree = build_phone_tree(tmp_path / "big", notes=120, seed=7)
    shas = [n.sha256 for n in tree.notes if n.is_note]
    assert len(shas) == len(set(shas))


def test_on_a_terminal_a_progress_bar_shows_files_and_bytes(phone, archive):
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal has a size
    process = subprocess.Popen(
        [sys.executable, "-m", "adbvoice", "backup", str(archive), "--tcp", phone.address],
        stdout=subprocess.PIPE, stderr=terminal, text=True,
    )
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
    text = shown.decode("utf-8", "replace")
    assert process.returncode == 3
    assert "notes" in text and "B/s" in text  # tqdm: "12/27 notes ... kB/s"
    assert "warning: " in text  # log lines go through the bar, on the terminal
    assert "new voice notes" in stdout


def test_a_folder_the_phone_cannot_read_is_reported_not_silently_skipped(phone_tree, archive):
    week = next(n.local_path.parent for n in phone_tree.notes if n.kind == "voice" and n.is_note)
    week.chmod(0o000)  # the phone's shell runs as its "shell" user, who cannot open it
    try:
        with EmulatedPhone(phone_tree.root) as phone:
            reports = [json.loads(run_cli("backup", archive, "--tcp", phone.address, "--json").stdout) for _ in "12"]
    finally:
        week.chmod(0o755)
    said = [[w for w in r[told] if w.startswith("the phone said: find:") and week.name in w]
            for r, told in zip(reports, ("warnings", "known_warnings"))]
    assert all(r["listed_by"] == "shell" for r in reports) and all(said), reports  # the second run lists again,
    assert said[0] == said[1] and reports[1]["exit_code"] == 0  # and knows it told that (issue 19)


def test_a_backup_with_nothing_new_asks_the_phone_for_a_fingerprint_not_the_whole_listing(phone, phone_tree, archive):
    run_cli("backup", archive, "--tcp", phone.address)
    phone.log.clear()

    again = run_cli("backup", archive, "--tcp", phone.address)

    assert again.exit_code == 0 and again.stdout.startswith("no new voice notes")
    services = phone.log.services()
    assert len(services) == 1 and services[0].startswith("exec:") and "sha256sum" in services[0]
    handshake = 2  # CNXN, and CNXN back
    assert phone.log.round_trips() - handshake <= 2
    from_phone = sum(r.length for r in phone.log.records() if r.direction == "device" and r.command == "WRTE")
    assert from_phone < 1000


def test_a_note_left_behind_is_tried_again_even_if_the_phone_did_not_change(phone_tree, archive):
    victim = next(n for n in phone_tree.notes if n.kind == "voice" and n.is_note)
    with EmulatedPhone(phone_tree.root, faults=Faults(fail_paths=victim.phone_path)) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 4
    with EmulatedPhone(phone_tree.root) as phone:
        again = run_cli("backup", archive, "--tcp", phone.address, "--json")
    assert [n["phone_path"] for n in json.loads(again.stdout)["new_notes"]] == [victim.phone_path]
