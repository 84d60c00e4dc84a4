"""A backup cut off at any step of publishing a note — by an exception, by the process
ending on the spot, or by Ctrl-C — never shows a partial file, never leaves a catalog row
without its file, and the next run completes the archive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from adbvoice.backup import receive
from adbvoice.emulator import EmulatedPhone
from tests.conftest import Outcome, run_cli
from tests.reliability.conftest import archive_state, note_hashes
from tests.reliability.killpoints import CRASH_EXIT, KILL_POINTS, NTH, KillPoint, arm

ROOT = Path(__file__).parents[2]


class InjectedCrash(Exception):
    """A bug at the seam: the CLI reports an internal error."""


def crash_in_a_subprocess(point: KillPoint, fired_file: Path, *args: str) -> Outcome:
    result = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_driver", point.key, str(fired_file), *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def raise_at(point: KillPoint) -> Callable[[], None]:
    def crash() -> None:
        raise InjectedCrash(point.step)
    return crash


def crash(point: KillPoint, mode: str, archive: Path, address: str, tmp_path: Path, monkeypatch) -> tuple[Outcome, bool]:
    """Run a backup that breaks at `point`; (its outcome, whether the break happened there)."""
    if mode == "os._exit":
        fired_file = tmp_path / "fired"
        outcome = crash_in_a_subprocess(point, fired_file, "backup", archive, "--tcp", address)
        fired = outcome.exit_code == CRASH_EXIT and fired_file.read_text() == f"{point.key}\n"
        return outcome, fired
    with monkeypatch.context() as patch:
        counter = arm(point, patch.setattr, raise_at(point) if mode == "exception" else ctrl_c)
        outcome = run_cli("backup", archive, "--tcp", address)
    return outcome, counter == [1]


@pytest.mark.parametrize("mode", ["exception", "os._exit", "ctrl-c"])
@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda p: p.key)
def test_a_crash_while_publishing_loses_nothing_and_the_next_run_completes(
    point, mode, small_tree, archive, tmp_path, monkeypatch, figures
):
    wanted = note_hashes(small_tree)
    whole = {n.sha256 for n in small_tree.notes}
    with EmulatedPhone(small_tree.root) as phone:
        outcome, fired = crash(point, mode, archive, phone.address, tmp_path, monkeypatch)
        cut = archive_state(archive, whole)
        rerun = run_cli("backup", archive, "--tcp", phone.address)
    final = archive_state(archive, whole)
    figures.row("Kill-point sweep").after_fault(fired=fired, wanted=wanted, states=(cut, final))
    figures.row("Kill-point sweep").notes[mode] += 1

    assert fired, (outcome.exit_code, outcome.stderr)
    assert cut.catalog_sound, cut
    # 3: the phone holds deliberately broken notes, reported when the rerun archives them
    assert rerun.exit_code == (0 if cut.clean and not cut.lost(wanted) else 3), rerun.stderr
    assert final.complete(wanted), final
    if mode != "ctrl-c":
        # Notes are published a group at a time: received notes wait in tmp/ until the group
        # is sealed, linked, its folders synced and its rows written in one transaction. Cut
        # off before a link: nothing visible. After: whole notes the catalog does not know
        # yet, which the rerun adopted (final.clean) — those linked before the cut, or every
        # note of the group once its transaction began and was rolled back.
        linked_before = {"write": 0, "seal": 0, "link": NTH - 1, "linked": NTH}
        assert len(cut.unknown) == linked_before.get(point.key, sum(cut.copies.values())), cut
    if mode == "exception":
        assert outcome.exit_code == 1 and "internal error" in outcome.stderr
    if mode == "ctrl-c":
        # Notes received whole before Ctrl-C are published; a group being published is
        # finished; the note in flight is discarded; never anything half-done.
        assert outcome.exit_code == 130 and cut.clean, (outcome.stderr, cut)
        if point.key == "write":
            assert sum(cut.copies.values()) == NTH - 1
        else:
            assert sum(cut.copies.values()) >= NTH


@pytest.mark.parametrize("point", [p for p in KILL_POINTS if p.key != "write"], ids=lambda p: p.key)
def test_a_crash_in_a_later_group_keeps_the_groups_published_before_it(point, small_tree, archive, monkeypatch):
    """Groups are published one after the other, the next one's syncs running while the
    one before is linked and catalogued: a crash in the third group of one note each leaves
    the groups published before it archived and catalogued, and nothing half-done."""
    wanted = note_hashes(small_tree)
    whole = {n.sha256 for n in small_tree.notes}
    monkeypatch.setattr(receive, "GROUP_NOTES", 1)
    with EmulatedPhone(small_tree.root) as phone:
        with monkeypatch.context() as patch:
            counter = arm(point, patch.setattr, raise_at(point))
            outcome = run_cli("backup", archive, "--tcp", phone.address)
        cut = archive_state(archive, whole)
        rerun = run_cli("backup", archive, "--tcp", phone.address)
    final = archive_state(archive, whole)

    assert counter == [1] and outcome.exit_code == 1, outcome.stderr
    assert cut.catalog_sound, cut
    # Group 3 may be stored while group 2 is still syncing, before it is linked: a crash
    # while storing it then leaves group 2 for the next run too.
    kept = {NTH - 2, NTH - 1} if point.key == "seal" else {NTH - 1}
    assert sum(cut.copies.values()) - len(cut.unknown) in kept, cut  # and no group after it
    assert rerun.exit_code == 3, rerun.stderr  # the phone's deliberately broken notes
    assert final.complete(wanted), final
