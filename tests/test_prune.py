"""A person whose phone is full frees its space: `prune` deletes the old notes the archive
provably holds, and nothing else, whatever the phone, the archive or the names are like."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import PhoneNote, build_phone_tree
from adbvoice.phone.device import Phone
from adbvoice.prune import run as prune_run
from tests.conftest import run_cli, run_process

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
VOICE = "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes"


def phone_files(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every file and link below the phone's /sdcard: its kind and its bytes (or target)."""
    found = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = ("link", os.readlink(path))
        elif path.is_file():
            found[relative] = ("file", path.read_bytes())
        else:
            found[relative] = ("folder", b"")
    return found


def archived_voice_notes(tree) -> list[PhoneNote]:
    return [n for n in tree.notes if n.is_note and n.kind != "audio"]


def record_today(sdcard: Path, number: int = 1) -> Path:
    """A note recorded today: too young for any prune of 90 days."""
    today = date.today()
    folder = sdcard / VOICE / f"{today:%Y%W}"
    folder.mkdir(parents=True, exist_ok=True)
    note = folder / f"PTT-{today:%Y%m%d}-WA{number:04d}.opus"
    shutil.copyfile(FIXTURES / "voice-1s.opus", note)
    return note


@pytest.fixture
def backed_up_phone(tmp_path, archive):
    """A phone of 24 notes from 2021 (and audio, broken and unrelated files), one of today,
    backed up once."""
    tree = build_phone_tree(tmp_path / "sdcard", notes=24)
    record_today(tree.root)
    with EmulatedPhone(tree.root) as phone:
        backed = run_cli("backup", archive, "--tcp", phone.address)
        assert backed.exit_code in (0, 3), backed.stderr
        yield phone, tree


def test_a_full_phone_gets_back_the_space_of_every_old_note_the_archive_holds(backed_up_phone, archive):
    phone, tree = backed_up_phone
    before = phone_files(tree.root)

    result = run_cli("prune", archive, "--tcp", phone.address, "--yes")

    assert result.exit_code == 0, result.stderr
    gone = {n.phone_path.removeprefix("/sdcard/") for n in archived_voice_notes(tree)}
    after = phone_files(tree.root)
    assert set(before) - set(after) == gone  # exactly the old archived notes
    assert all(after[path] == before[path] for path in after)  # everything else byte-identical, folders too
    assert result.stdout.startswith("freed ")
    assert f"{len(gone)} notes older than 90 days, all verified in the archive" in result.stdout
    assert result.stdout.count("\n") == 1
    # The archive keeps every note, and says nothing is amiss.
    assert run_cli("verify", archive).exit_code == 0
    listed = json.loads(run_cli("ls", archive, "--json").stdout)
    assert len(listed) == len(archived_voice_notes(tree)) + 1
    assert sorted(bool(n["pruned_at"]) for n in listed) == [False] + [True] * len(gone)  # today's is still there
    assert f"On phone    no longer, for {len(gone)} (deleted by prune; kept here)" in run_cli("stats", archive).stdout
    assert run_cli("export", archive, "--html").exit_code == 0
    assert f'"o":"{date.today()}"' in (archive / "voice-notes.html").read_text()
    pruned = catalog_rows(archive)
    assert run_cli("catalog", "rebuild", archive).exit_code == 0
    assert catalog_rows(archive) == pruned  # a rebuild keeps what prune recorded

    again = run_cli("prune", archive, "--tcp", phone.address, "--yes")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith("nothing to prune")


def test_older_than_keeps_what_is_younger_and_source_chooses_the_folders(backed_up_phone, archive):
    phone, tree = backed_up_phone
    notes = archived_voice_notes(tree)
    business = [n for n in notes if n.kind == "business"]

    result = run_cli("prune", archive, "--tcp", phone.address, "--yes", "--source", "business", "--older-than", "1y")

    assert result.exit_code == 0, result.stderr
    left = phone_files(tree.root)
    assert business and all(n.phone_path.removeprefix("/sdcard/") not in left for n in business)
    assert all(n.phone_path.removeprefix("/sdcard/") in left for n in notes if n.kind != "business")

    dry = run_cli("prune", archive, "--tcp", phone.address, "--dry-run", "--older-than", "9999d")
    assert dry.exit_code == 0, dry.stderr
    assert "recorded within the last 9,999 days" in dry.stdout
    assert not any(line.startswith("delete ") for line in dry.stdout.splitlines())


def test_a_dry_run_and_a_run_without_a_terminal_delete_nothing(backed_up_phone, archive):
    phone, tree = backed_up_phone
    before = phone_files(tree.root)
    phone.log.clear()

    dry = run_cli("prune", archive, "--tcp", phone.address, "--dry-run")
    unasked = run_cli("prune", archive, "--tcp", phone.address)

    assert phone_files(tree.root) == before
    assert not any("rm -f" in service for service in phone.log.services())
    assert dry.exit_code == 0, dry.stderr
    lines = dry.stdout.splitlines()
    deletable = [line for line in lines if line.startswith("delete  ")]
    assert len(deletable) == len(archived_voice_notes(tree))
    assert all(" (archived as " in line for line in deletable)
    assert any(line.startswith("keep    ") and "(not a voice note" in line for line in lines)  # .nomedia
    assert any("recorded within the last 90 days" in line for line in lines)
    assert lines[-1].startswith("dry run: would free")
    assert unasked.exit_code == 51
    assert "no terminal to ask on: run it again with --yes; nothing deleted" in unasked.stderr


def test_a_person_at_a_terminal_is_asked_once_and_no_keeps_every_note(backed_up_phone, archive):
    phone, tree = backed_up_phone
    before = phone_files(tree.root)

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "adbvoice", "prune", str(archive), "--tcp", phone.address],
        stdin=terminal, stdout=terminal, stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while b"Delete them from the phone?" not in shown:
        shown += os.read(controller, 65536)
    os.write(controller, b"n\n")
    process.wait(timeout=30)
    try:
        while chunk := os.read(controller, 65536):
            shown += chunk
    except OSError:
        pass
    os.close(controller)
    text = shown.decode("utf-8", "replace")

    assert process.returncode == 0
    assert re.search(rf"{len(archived_voice_notes(tree))} voice notes \(2.0 MB\) recorded 2021-\d\d-\d\d to 2022-", text)
    assert "… and " in text  # the first few names, then how many more
    assert "nothing deleted (you said no)" in text
    assert phone_files(tree.root) == before


def test_notes_the_archive_cannot_vouch_for_stay_on_the_phone_and_are_reported(backed_up_phone, archive):
    phone, tree = backed_up_phone
    notes = archived_voice_notes(tree)
    appended, flipped_in_archive, silently_changed = notes[0], notes[1], notes[2]
    with open(appended.local_path, "ab") as f:  # WhatsApp still writing it
        f.write(b"more")
    rows = {r["sha256"]: r for r in json.loads(run_cli("ls", archive, "--json").stdout)}
    damaged = archive / rows[flipped_in_archive.sha256]["archive_path"]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.chmod(0o600)
    damaged.write_bytes(bytes(data))
    st = silently_changed.local_path.stat()  # the phone's copy rots: same size, same time
    rotten = bytearray(silently_changed.local_path.read_bytes())
    rotten[-1] ^= 0x01
    silently_changed.local_path.write_bytes(bytes(rotten))
    os.utime(silently_changed.local_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    elsewhere = tree.root / "Music" / "kept.opus"
    elsewhere.parent.mkdir()
    shutil.copyfile(FIXTURES / "voice-1s.opus", elsewhere)
    link = appended.local_path.parent / "PTT-20210101-WA0999.opus"
    link.symlink_to(elsewhere)
    never_backed_up = appended.local_path.parent / "PTT-20210102-WA0998.opus"
    shutil.copyfile(FIXTURES / "voice-1s.opus", never_backed_up)
    kept = {appended.local_path, damaged, silently_changed.local_path, link, elsewhere, never_backed_up}
    before = {p: p.read_bytes() if not p.is_symlink() else os.readlink(p) for p in kept}

    result = run_cli("prune", archive, "--tcp", phone.address, "--yes")

    assert result.exit_code == 3, result.stderr
    assert {p: p.read_bytes() if not p.is_symlink() else os.readlink(p) for p in kept} == before
    assert flipped_in_archive.local_path.exists()
    warnings = result.stderr
    assert f"{appended.phone_path}: kept: changed on the phone since it was archived" in warnings
    assert f"{flipped_in_archive.phone_path}: kept: its archived copy no longer reads back" in warnings
    assert f"{silently_changed.phone_path}: kept: the phone's own hash of it differs" in warnings
    assert "1 note is not in the archive yet and stays on the phone: back up first" in warnings
    others = [n for n in notes if n not in (appended, flipped_in_archive, silently_changed)]
    assert not any(n.local_path.exists() for n in others)


def test_hostile_names_are_deleted_exactly_and_nothing_beside_them(tmp_path, archive):
    sdcard = tmp_path / "sdcard"
    folder = sdcard / VOICE / "202101"
    folder.mkdir(parents=True)
    hostile = ["-rf .opus", "a\nb.opus", "$(touch pwned).opus", "it's \"quoted\" `x`.opus", " .opus"]
    for index, name in enumerate(hostile):
        (folder / name).write_bytes((FIXTURES / "voice-1s.opus").read_bytes() + bytes([index]))
        os.utime(folder / name, (1609900000 + index, 1609900000 + index))
    with EmulatedPhone(sdcard) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)
        decoys = ["a", "b.opus", "-rf", "$(touch pwned)"]  # what a word-splitting delete would hit
        for name in decoys:
            (folder / name).write_bytes(b"decoy")

        result = run_cli("prune", archive, "--tcp", phone.address, "--yes")

    assert result.exit_code == 3, result.stderr  # the decoy b.opus is a note not yet archived
    assert sorted(p.name for p in folder.iterdir()) == sorted(decoys)
    assert not list(tmp_path.rglob("pwned"))


def test_an_archive_on_the_phone_itself_is_refused(backed_up_phone, archive):
    phone, tree = backed_up_phone
    on_phone = tree.root / "Backups" / "voice"
    shutil.copytree(archive, on_phone, symlinks=True)
    before = phone_files(tree.root)

    result = run_cli("prune", on_phone, "--tcp", phone.address, "--yes")

    assert result.exit_code == 50
    assert "the archive is on Pixel 7" in result.stderr and "would delete their only copy" in result.stderr
    lock = "Backups/voice/.adbvoice/lock"  # holds who ran last
    assert phone_files(tree.root).keys() == before.keys()  # the probe file is gone again too
    assert {k: v for k, v in phone_files(tree.root).items() if k != lock} == {k: v for k, v in before.items() if k != lock}


def test_an_archive_on_an_mtp_mount_is_refused_before_the_phone_is_asked(backed_up_phone, archive, monkeypatch):
    phone, _tree = backed_up_phone
    monkeypatch.setattr(prune_run, "filesystem_type", lambda _path: "fuse.gvfsd-fuse")
    phone.log.clear()

    result = run_cli("prune", archive, "--tcp", phone.address, "--yes")

    assert result.exit_code == 50
    assert "is on a fuse.gvfsd-fuse mount, which may be a phone's own storage" in result.stderr
    assert len(phone.log) == 0


def test_a_phone_without_a_shell_cannot_prove_anything_and_keeps_every_note(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=4)
    with EmulatedPhone(tree.root, shell=False) as phone:
        run_cli("backup", archive, "--tcp", phone.address)
        before = phone_files(tree.root)
        result = run_cli("prune", archive, "--tcp", phone.address, "--yes")
    assert result.exit_code == 50
    assert "no shell with sha256sum or md5sum" in result.stderr
    assert phone_files(tree.root) == before


def test_a_phone_with_only_md5sum_is_checked_with_md5(backed_up_phone, archive, monkeypatch):
    phone, tree = backed_up_phone
    monkeypatch.setattr(Phone, "prune_hash_tool", lambda self: "md5sum")

    result = run_cli("prune", archive, "--tcp", phone.address, "--yes", "--json")

    report = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert report["hash_tool"] == "md5sum"
    assert len(report["deleted"]) == len(archived_voice_notes(tree))


@pytest.mark.parametrize("given, message", [
    (["--older-than", "3 months"], "--older-than '3 months': use days, weeks or years"),
    (["--source", "films"], "--source 'films': use one of voice, business, legacy, audio, legacy-business"),
])
def test_bad_flags_are_one_line_and_delete_nothing(tmp_path, given, message):
    result = run_cli("prune", tmp_path, *given)
    assert result.exit_code == 2 and message in result.stderr


def test_prune_needs_an_existing_archive(tmp_path):
    result = run_cli("prune", tmp_path / "nowhere", "--yes")
    assert result.exit_code == 24 and "is not an adbvoice archive" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def catalog_rows(archive: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(archive / ".adbvoice" / "catalog.sqlite") as db:
        return sorted((bytes(p).decode(), s) for p, s in db.execute("SELECT phone_path, state FROM pruned"))


@pytest.mark.parametrize("kill_when", ["connected", "deleting"])
def test_a_prune_killed_midway_is_finished_by_the_next_and_the_catalog_matches_the_phone(
    tmp_path, archive, kill_when
):
    tree = build_phone_tree(tmp_path / "sdcard", notes=400, audio=False, broken=False)
    notes = archived_voice_notes(tree)
    with EmulatedPhone(tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)
        process = subprocess.Popen(
            [sys.executable, "-m", "adbvoice", "prune", str(archive), "--tcp", phone.address, "--yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if kill_when == "connected" and phone.connections_open:
                break
            if kill_when == "deleting" and any(not n.local_path.exists() for n in notes):
                break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait()
        partly = sum(not n.local_path.exists() for n in notes)

        result = run_process("prune", archive, "--tcp", phone.address, "--yes")

        assert result.exit_code == 0, result.stderr
        assert not any(n.local_path.exists() for n in notes)
        assert catalog_rows(archive) == sorted((n.phone_path, "deleted") for n in notes)
        assert run_cli("verify", archive).exit_code == 0
    if kill_when == "deleting":
        assert 0 < partly < len(notes)


def test_a_backup_after_a_prune_finds_nothing_new_and_sees_a_note_put_back(backed_up_phone, archive):
    phone, tree = backed_up_phone
    assert run_cli("prune", archive, "--tcp", phone.address, "--yes").exit_code == 0
    after = run_cli("backup", archive, "--tcp", phone.address)
    assert after.exit_code == 0, after.stderr
    assert after.stdout.startswith("no new voice notes, 1 already archived")  # today's; nothing missing

    note = archived_voice_notes(tree)[0]
    row = next(r for r in json.loads(run_cli("ls", archive, "--json").stdout) if r["sha256"] == note.sha256)
    shutil.copyfile(archive / row["archive_path"], note.local_path)  # put back by hand, as restore will
    os.utime(note.local_path, (note.mtime, note.mtime))
    assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0
    row = next(r for r in json.loads(run_cli("ls", archive, "--json").stdout) if r["sha256"] == note.sha256)
    assert row["pruned_at"] is None  # on the phone again


def test_prune_wifi_frees_the_paired_phone_found_by_mdns(tmp_path, archive, home):
    from tests.test_wifi import paired, wifi_phone

    tree = build_phone_tree(tmp_path / "sdcard", notes=8)
    with wifi_phone(tree, home, tmp_path / "phone-state") as phone:
        paired(phone)
        assert run_cli("backup", archive, "--wifi").exit_code in (0, 3)
        before = phone_files(tree.root)
        result = run_cli("prune", archive, "--wifi", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    gone = {n.phone_path.removeprefix("/sdcard/") for n in archived_voice_notes(tree)}
    assert set(before) - set(phone_files(tree.root)) == gone
    assert len(json.loads(result.stdout)["deleted"]) == len(gone)


def test_prune_wifi_with_no_phone_on_the_network_says_what_to_check_and_deletes_nothing(tmp_path, archive, home):
    from tests.test_wifi import paired, wifi_phone

    tree = build_phone_tree(tmp_path / "sdcard", notes=4)
    with wifi_phone(tree, home, tmp_path / "phone-state") as phone:
        paired(phone)
        assert run_cli("backup", archive, "--wifi").exit_code in (0, 3)
    before = phone_files(tree.root)  # the phone has left the network (Wireless debugging off)
    result = run_cli("prune", archive, "--wifi", "--yes")
    assert result.exit_code == 53
    assert result.stderr.startswith("adbvoice: ") and result.stderr.count("\n") == 1
    assert "Wireless debugging is on" in result.stderr
    assert phone_files(tree.root) == before
