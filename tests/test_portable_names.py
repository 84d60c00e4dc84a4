"""An archive on a USB stick or a NAS share (FAT, exFAT, NTFS, SMB) gets names those
filesystems take, the same way on every run; a phone model that spells the state
folder's name in any case is a folder like any other."""

from __future__ import annotations

import json
import os

import pytest

from adbvoice.archive.layout import portable
from adbvoice.backup import run as backup_run
from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import build_phone_tree
from tests.conftest import run_cli


@pytest.mark.parametrize("given, taken", [
    ("PTT-20240501-WA0001.opus", "PTT-20240501-WA0001.opus"),
    ('a:b?c*d"e<f>g|h.opus', "a_b_c_d_e_f_g_h.opus"),
    ("CON.opus", "_CON.opus"),
    ("nul", "_nul"),
    ("com1.txt.opus", "_com1.txt.opus"),
    ("console.opus", "console.opus"),
    ("Pixel 7. ", "Pixel 7__"),
])
def test_portable_names_are_what_fat_exfat_ntfs_and_smb_take(given, taken):
    assert portable(given) == taken


def phone_with(tmp_path, names: list[bytes]):  # noqa: ANN201 - a PhoneTree
    tree = build_phone_tree(tmp_path / "sdcard", notes=2, business=False, legacy=False, broken=False, audio=False)
    week = next(n.local_path.parent for n in tree.notes if n.kind == "voice" and n.is_note)
    sample = next(n.local_path for n in tree.notes if n.kind == "voice" and n.is_note).read_bytes()
    for index, name in enumerate(names):
        with open(os.path.join(os.fsencode(week), name), "wb") as handle:
            handle.write(sample + bytes([index]))
    return tree


def test_on_a_fat_disk_every_name_is_one_fat_takes_and_the_next_run_finds_them_all(tmp_path, archive, monkeypatch):
    monkeypatch.setattr(backup_run, "filesystem_type", lambda _path: "vfat")  # no FAT driver here: the seam
    tree = phone_with(tmp_path, [b"PTT-20240502-WA0007?.opus", b"CON.opus"])
    with EmulatedPhone(tree.root, model="My: Phone.") as phone:
        first = run_cli("backup", archive, "--tcp", phone.address, "--layout", "{device}/{name}", "--json")
        again = run_cli("backup", archive, "--tcp", phone.address, "--layout", "{device}/{name}", "--json")

    assert first.exit_code == 3, first.stderr  # the two renamed notes are named in warnings
    paths = sorted(n["archive_path"] for n in json.loads(first.stdout)["new_notes"])
    assert "My__Phone_/PTT-20240502-WA0007_.opus" in paths and "My__Phone_/_CON.opus" in paths
    assert all(p.startswith("My__Phone_/") for p in paths), paths
    assert any("CON.opus: " in w and "archived as My__Phone_/_CON.opus" in w for w in json.loads(first.stdout)["warnings"])
    assert again.exit_code == 0 and json.loads(again.stdout)["new_notes"] == []


def test_a_phone_named_like_the_state_folder_in_any_case_is_archived_beside_it(tmp_path, archive):
    tree = phone_with(tmp_path, [])
    with EmulatedPhone(tree.root, model=".ADBVOICE") as phone:
        result = run_cli("backup", archive, "--tcp", phone.address, "--layout", "{device}/{name}", "--json")
    assert result.exit_code == 0, result.stderr
    assert {n["archive_path"].split("/")[0] for n in json.loads(result.stdout)["new_notes"]} == {"_.ADBVOICE"}
    assert not list((archive / ".adbvoice").rglob("*.opus"))
