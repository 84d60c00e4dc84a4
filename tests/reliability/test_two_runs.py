"""Two backups started on one archive: the first proceeds, the second exits at once with
exit code 22 whatever moment it arrives at, and the archive takes no damage."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from adbvoice.emulator import EmulatedPhone, LinkProfile
from tests.conftest import run_process
from tests.reliability.conftest import archive_state, note_hashes

SLOW = LinkProfile(rtt_s=0.001, bandwidth_Bps=500_000)


@pytest.mark.parametrize("moment", ["as the first starts", "while it copies"])
def test_a_second_run_exits_at_once_and_the_first_completes(moment, small_tree, archive, figures):
    wanted, whole = note_hashes(small_tree), {n.sha256 for n in small_tree.notes}
    with EmulatedPhone(small_tree.root, link=SLOW) as phone:
        first = subprocess.Popen(
            [sys.executable, "-m", "adbvoice", "backup", str(archive), "--tcp", phone.address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        lock = archive / ".adbvoice" / "lock"
        holding = f"pid {first.pid} "
        while first.poll() is None and not (lock.exists() and holding in lock.read_text()):
            time.sleep(0.002)
        if moment == "while it copies":
            while first.poll() is None and phone.file_bytes_sent == 0:
                time.sleep(0.002)
        second = run_process("backup", archive, "--tcp", phone.address, timeout=60)
        overlapped = first.poll() is None  # the first was still running when the second gave up
        _, first_err = first.communicate(timeout=60)
    final = archive_state(archive, whole)
    row = figures.row("Two runs at once")
    row.after_fault(fired=overlapped and second.exit_code == 22, wanted=wanted, states=(final,))
    row.notes[f"second started {moment}"] += 1

    assert overlapped and second.exit_code == 22, second.stderr
    assert f"is in use by adbvoice pid {first.pid} on " in second.stderr.strip().splitlines()[-1]
    assert first.returncode == 3, first_err
    assert final.complete(wanted), final
