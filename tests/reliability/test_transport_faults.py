"""The link to the phone fails in each way the emulated phone can stage: the run ends with
its documented exit code, nothing partial is left, and the next run completes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from adbvoice.emulator import AuthPolicy, EmulatedPhone, Faults
from adbvoice.emulator.phonetree import PhoneTree
from adbvoice.phone import wire
from tests.conftest import Outcome, run_cli, run_process
from tests.reliability.conftest import archive_state, note_hashes


@dataclass
class Staged:
    """A fault set up on a phone: what to build it with, how to run, and what must happen."""

    code: int
    phone: dict = field(default_factory=dict)
    args: tuple[str, ...] = ()
    in_a_process: bool = False  # a hang guard: run_process times out where run_cli would hang
    fired: Callable[[EmulatedPhone, Outcome], bool] = lambda phone, outcome: False


def victim(tree: PhoneTree):  # noqa: ANN201 - a PhoneNote
    return next(n for n in tree.notes if n.kind == "voice" and n.is_note)


def half_the_bytes(tree: PhoneTree) -> int:
    return sum(n.size for n in tree.notes if n.sha256 in note_hashes(tree)) // 2


def dropped(tree: PhoneTree) -> Staged:
    half = half_the_bytes(tree)
    return Staged(17, {"faults": Faults(drop_after_bytes=half)}, fired=lambda phone, _: phone.faults_fired["drop"] == 1)


def stalled(tree: PhoneTree) -> Staged:
    half = half_the_bytes(tree)
    return Staged(17, {"faults": Faults(stall_after_bytes=half)}, ("--io-timeout", "1"), in_a_process=True,
                  fired=lambda phone, _: phone.faults_fired["stall"] == 1)


def refused_path(tree: PhoneTree) -> Staged:
    path = victim(tree).phone_path
    return Staged(4, {"faults": Faults(fail_paths=path)},
                  fired=lambda phone, outcome: phone.faults_fired["fail_path"] == 1 and path in outcome.stderr)


def not_authorized(tree: PhoneTree) -> Staged:
    def offered_and_refused(phone: EmulatedPhone, _outcome: Outcome) -> bool:
        offers = [r for r in phone.log if r.direction == "host" and r.command == "AUTH"
                  and r.arg0 == wire.AUTH_RSAPUBLICKEY]
        return len(offers) == 1 and not phone.trusted_keys

    return Staged(12, {"auth": AuthPolicy(mode="refuse")}, fired=offered_and_refused)


def unplugged_between_files(tree: PhoneTree) -> Staged:
    """The cable is pulled right after the third file went out whole (DONE and lstat
    included): a phone without a shell, so that each note is published as soon as it has
    arrived, with no phone-side hash to wait for. Then the phone is gone for a while."""
    with EmulatedPhone(tree.root, shell=False) as phone:
        dry = run_cli("backup", tree.root.parent / "dry-run", "--tcp", phone.address, "--dry-run", "--json")
    boundary = sum(p["size"] for p in json.loads(dry.stdout)["planned"][:3]) + 1
    return Staged(17, {"shell": False, "faults": Faults(drop_after_bytes=boundary)},
                  fired=lambda phone, _: phone.faults_fired["drop"] == 1 and phone.file_bytes_sent == boundary)


FAULTS = {
    "connection dropped mid-file": dropped,
    "phone stalls (times out, no hang)": stalled,
    "FAIL on one path": refused_path,
    "authorization refused": not_authorized,
    "unplugged between files": unplugged_between_files,
}


@pytest.mark.parametrize("name", FAULTS)
def test_a_transport_fault_ends_with_its_code_and_the_next_run_completes(name, small_tree, archive, tmp_path, figures):
    wanted = note_hashes(small_tree)
    whole = {n.sha256 for n in small_tree.notes}
    staged = FAULTS[name](small_tree)
    with EmulatedPhone(small_tree.root, **staged.phone) as phone:
        run = run_process if staged.in_a_process else run_cli
        outcome = run("backup", archive, "--tcp", phone.address, *staged.args)
        fired = staged.fired(phone, outcome)
    cut = archive_state(archive, whole)
    if name == "unplugged between files":
        # The phone is gone now: a run meanwhile cannot reach it.
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 16
    with EmulatedPhone(small_tree.root) as healthy:
        rerun = run_cli("backup", archive, "--tcp", healthy.address)
    final = archive_state(archive, whole)
    row = figures.row("Transport faults")
    row.after_fault(fired=fired, wanted=wanted, states=(cut, final))
    row.notes[f"exit {staged.code}"] += 1

    assert fired, outcome.stderr
    assert outcome.exit_code == staged.code, outcome.stderr
    assert outcome.stderr.count("adbvoice: ") >= 1 and "Traceback" not in outcome.stderr
    assert cut.clean, cut
    if name == "FAIL on one path":
        assert set(cut.copies) == wanted - {victim(small_tree).sha256}  # the others were still copied
    if name == "unplugged between files":
        assert sum(cut.copies.values()) == 3, outcome.stderr
    assert rerun.exit_code in (0, 3), rerun.stderr  # 3: broken notes the phone holds, if copied now
    assert final.complete(wanted), final
