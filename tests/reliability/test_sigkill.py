"""The real CLI killed with SIGKILL — no handler, no cleanup — at moments spread over a
real backup: each time the next run completes and `adbvoice verify` finds all well."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from adbvoice.emulator import EmulatedPhone, LinkProfile
from adbvoice.emulator.phonetree import build_phone_tree
from tests.conftest import run_cli
from tests.reliability.conftest import archive_state, note_hashes, tree_listing, writes_outside

# A capped link stretches the copy, so that kills by the bytes sent and received spread over it.
LINK = LinkProfile(rtt_s=0.001, bandwidth_Bps=1_000_000)
When = Callable[[], bool]


def start_backup(archive: Path, address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "adbvoice", "backup", str(archive), "--tcp", address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def published_notes(archive: Path) -> list[Path]:
    return [Path(folder, name) for folder, _, files in os.walk(archive)
            if ".adbvoice" not in Path(folder).relative_to(archive).parts for name in files]


def bytes_received(archive: Path) -> int:
    """What the backup wrote so far: temp files being received, and published notes."""
    tmp = archive / ".adbvoice" / "tmp"
    files = (list(tmp.iterdir()) if tmp.is_dir() else []) + published_notes(archive)
    total = 0
    for path in files:
        try:
            total += path.stat().st_size
        except FileNotFoundError:  # a temp file published or discarded meanwhile
            pass
    return total


def moments(phone: EmulatedPhone, archive: Path, total: int, notes: int) -> list[tuple[str, When]]:
    """When to kill one backup, from its start to its last notes: what the phone has seen
    (connection, the services opened, bytes sent) and what the archive shows (bytes
    received, notes published; each kill by count lands while the next note is published)."""
    accepted, opened, sent = phone.connections_accepted, len(phone.log.services()), phone.file_bytes_sent
    found: list[tuple[str, When]] = [
        ("while Python starts", lambda: True),
        ("on connecting", lambda: phone.connections_accepted > accepted),
        ("while listing", lambda: len(phone.log.services()) > opened),
        ("as the phone starts hashing", lambda: len(phone.log.services()) > opened + 1),
        ("as the pull starts", lambda: len(phone.log.services()) > opened + 2),
    ]
    found += [(f"after {k}/5 of the bytes sent", lambda k=k: phone.file_bytes_sent - sent >= total * k // 5) for k in range(1, 5)]
    found += [(f"after {k}/4 of the bytes received", lambda k=k: bytes_received(archive) >= max(1, total * k // 4)) for k in range(4)]
    found += [(f"after {k} notes published", lambda k=k: len(published_notes(archive)) >= k) for k in range(1, notes - 1)]
    return found


def kill_when(process: subprocess.Popen, reached: Callable[[], bool]) -> bool:
    """SIGKILL the process once `reached()`; True if it was still running then."""
    while process.poll() is None and not reached():
        time.sleep(0.001)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=30) == -signal.SIGKILL


def test_sigkill_at_any_moment_of_a_backup_loses_nothing(tmp_path, figures):
    tree = build_phone_tree(tmp_path / "sdcard", notes=10, audio=False, unrelated=False)
    wanted = note_hashes(tree)
    whole = {n.sha256 for n in tree.notes}
    archives = tmp_path / "archives"
    before = tree_listing(tmp_path, skip=archives)
    row = figures.row("SIGKILL sweep")
    total = sum(n.size for n in tree.notes if n.sha256 in wanted)
    with EmulatedPhone(tree.root, link=LINK) as phone:
        tried = len(moments(phone, archives, total, len(wanted)))
        for index in range(tried):
            archive = archives / f"kill-{index:02d}"
            moment, reached = moments(phone, archive, total, len(wanted))[index]
            killed = kill_when(start_backup(archive, phone.address), reached)
            cut = archive_state(archive, whole)
            rerun = run_cli("backup", archive, "--tcp", phone.address)
            verified = run_cli("verify", archive)
            final = archive_state(archive, whole)
            row.after_fault(fired=killed, wanted=wanted, states=(cut, final))
            row.notes["killed with notes archived" if cut.copies else "killed before any note"] += int(killed)

            assert cut.catalog_sound, (moment, cut)
            assert rerun.exit_code in (0, 3), rerun.stderr  # 3: broken notes the phone holds, if copied now
            assert verified.exit_code == 0, verified.stdout
            assert final.complete(wanted), final
    # Each moment is reached during the run, but a loaded machine may let a backup finish
    # before the kill of its last moments lands: those count as tried, not as fired.
    assert tried >= 24 and row.fired >= 20, row
    outside = writes_outside(before, tree_listing(tmp_path, skip=archives))
    row.measured(outside=len(outside))
    assert outside == []
