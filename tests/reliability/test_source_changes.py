"""A note that changes while it is copied (still being recorded) is never published half:
it is copied again once it holds still, in this run or a later one."""

from __future__ import annotations

import hashlib

import pytest

from adbvoice.emulator import EmulatedPhone, Faults
from tests.conftest import run_cli
from tests.reliability.conftest import archive_state, note_hashes


@pytest.mark.parametrize("grows", [1, 2, 50], ids=["once", "twice", "all the time"])
def test_a_note_growing_while_copied_is_archived_only_once_stable(grows, small_tree, archive, figures):
    victim = next(n for n in small_tree.notes if n.kind == "voice" and n.is_note)
    versions = {n.sha256 for n in small_tree.notes}  # every whole version the phone held...
    faults = Faults(grow_paths=victim.phone_path, grow_bytes=1000, grow_times=grows)
    with EmulatedPhone(small_tree.root, faults=faults) as phone:
        first = run_cli("backup", archive, "--tcp", phone.address, "--json")
        fired = phone.faults_fired["grow"]
    stable = hashlib.sha256(victim.local_path.read_bytes()).hexdigest()
    versions.add(stable)  # ...and the one it settled on
    during = archive_state(archive, versions)
    with EmulatedPhone(small_tree.root) as phone:
        later = run_cli("backup", archive, "--tcp", phone.address)
    final = archive_state(archive, versions)
    wanted = note_hashes(small_tree) - {victim.sha256} | {stable}
    row = figures.row("Source changes during copy")
    row.after_fault(fired=fired == min(grows, 3), wanted=wanted, states=(during, final))
    row.notes["archived in the same run" if stable in during.copies else "left for the next run"] += 1

    assert fired == min(grows, 3)  # one growth per attempt, three attempts per run
    assert victim.sha256 not in during.copies  # the version that changed under the copy
    assert during.clean and final.clean, (during, final)
    if grows < 3:  # it held still on a retry within the run
        assert stable in during.copies and first.exit_code == 3
    else:
        assert stable not in during.copies
        assert "kept changing while being copied" in first.stdout
        assert later.exit_code == 3 and stable in final.copies  # 3: the zeros appended are no Ogg page
    assert final.complete(wanted), final
