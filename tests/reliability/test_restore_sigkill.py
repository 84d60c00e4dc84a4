"""The real `restore` killed with SIGKILL — no handler, no cleanup — at moments spread over
putting a wiped phone's notes back: never a half note under a note's name, and each time the
next run sweeps the temp files and puts back the rest, byte for byte with its time."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from adbvoice.emulator import EmulatedPhone, LinkProfile
from adbvoice.emulator.phonetree import build_phone_tree
from adbvoice.restore.pushing import TEMP_NAME
from tests.conftest import run_cli

LINK = LinkProfile(rtt_s=0.001, bandwidth_Bps=2_000_000)
NOTE_FOLDERS = ("Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes",
                "Android/media/com.whatsapp.w4b/WhatsApp Business/Media/WhatsApp Business Voice Notes")
When = Callable[[], bool]


def notes_on(root: Path) -> dict[str, tuple[bytes, int]]:
    """What stands under a note's name in the voice-note folders (temp files are not notes)."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), int(p.stat().st_mtime)) for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).as_posix().startswith(NOTE_FOLDERS) and p.name != ".nomedia"
            and not TEMP_NAME.fullmatch(os.fsencode(p.name))}


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TEMP_NAME.fullmatch(os.fsencode(p.name))]


def moments(phone: EmulatedPhone, root: Path, total: int, notes: int) -> list[tuple[str, When]]:
    """When to kill one restore: what the phone has seen (the connection, services opened,
    bytes pushed) and what its storage shows (notes under their names)."""
    accepted, opened, received = phone.connections_accepted, len(phone.log.services()), phone.file_bytes_received

    def services_with(text: str) -> int:
        return sum(text in service for service in phone.log.services()[opened:])

    found: list[tuple[str, When]] = [
        ("while Python starts", lambda: True),
        ("on connecting", lambda: phone.connections_accepted > accepted),
        ("while surveying the phone", lambda: len(phone.log.services()) > opened),
        ("as the push starts", lambda: phone.file_bytes_received > received),
    ]
    found += [(f"after {k}/4 of the bytes pushed", lambda k=k: phone.file_bytes_received - received >= total * k // 4)
              for k in range(1, 4)]
    found += [
        ("as the phone hashes the pushed notes", lambda: services_with("sha256sum") >= 1),
        ("as the phone renames them", lambda: services_with("rename") >= 1),
        ("after the first note took its name", lambda: len(notes_on(root)) >= 1),
        ("after half the notes took their names", lambda: len(notes_on(root)) >= notes // 2),
    ]
    return found


def kill_when(process: subprocess.Popen, reached: When) -> bool:
    """SIGKILL the process once `reached()`; True if it was still running then."""
    while process.poll() is None and not reached():
        time.sleep(0.001)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=30) == -signal.SIGKILL


def test_sigkill_at_any_moment_of_a_restore_leaves_no_half_note_and_the_next_run_completes(tmp_path, archive, figures):
    tree = build_phone_tree(tmp_path / "sdcard", notes=40)
    with EmulatedPhone(tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code in (0, 3)
    lost = notes_on(tree.root)
    total = sum(len(data) for data, _ in lost.values())
    row = figures.row("Restore SIGKILL sweep")
    with EmulatedPhone(tree.root, link=LINK) as phone:
        tried = len(moments(phone, tree.root, total, len(lost)))
        for index in range(tried):
            for folder in NOTE_FOLDERS:
                shutil.rmtree(tree.root / folder, ignore_errors=True)
            moment, reached = moments(phone, tree.root, total, len(lost))[index]
            process = subprocess.Popen([sys.executable, "-m", "adbvoice", "restore", str(archive), "--tcp",
                                        phone.address], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            killed = kill_when(process, reached)
            cut = notes_on(tree.root)
            half = [path for path, held in cut.items() if lost.get(path) != held]
            left = temp_files(tree.root)
            rerun = run_cli("restore", archive, "--tcp", phone.address)
            final = notes_on(tree.root)
            missing = [path for path, held in lost.items() if final.get(path) != held]
            row.case(fired=killed, lost=len(missing), partial=len(half) + len(temp_files(tree.root)))
            row.notes["killed with temp files on the phone" if left else "killed with none"] += int(killed)

            assert half == [], (moment, half)  # a note's name holds the whole note, or nothing
            assert rerun.exit_code == 0, (moment, rerun.stderr)
            assert missing == [] and final == lost, moment
            assert temp_files(tree.root) == [], moment  # swept by the rerun
    # A loaded machine may let a restore finish before the kill of its last moments lands:
    # those count as tried, not as fired.
    assert tried >= 11 and row.fired >= 8, row
