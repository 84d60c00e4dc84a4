"""Model-based: random sequences of what happens to a phone — notes recorded, deleted,
moved, overwritten — with connections dropped during backups and backups run. After
every backup the archive equals a model small enough to be obviously right: every note
content that was on the phone when a backup succeeded is archived exactly once, byte for
byte; nothing else is there but whole contents the phone held; `verify` finds all well.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from adbvoice.emulator import EmulatedPhone, Faults
from adbvoice.phone import keys
from tests.conftest import run_cli
from tests.reliability.conftest import archive_state

# Folders of three WhatsApp places; names from a small pool, so that the same name often
# holds different contents in different places (the archive must keep both).
FOLDERS = (
    "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202410",
    "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202410/Sent",
    "Android/media/com.whatsapp.w4b/WhatsApp Business/Media/WhatsApp Business Voice Notes/202410",
    "WhatsApp/Media/WhatsApp Voice Notes/202410",
)
NAMES = tuple(f"PTT-2024030{day}-WA000{number}.opus" for day in (4, 5) for number in range(3))
EXAMPLES, STEPS = 55, 20  # 1,100 steps at most; CI must see at least MIN_STEPS
MIN_STEPS = 1000
CONTENT = st.binary(max_size=3000)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Tally:
    """What all examples did, for the figures."""

    def __init__(self) -> None:
        self.examples = self.steps = self.backups = self.drops = self.lost = self.partial = 0


class PhoneAndArchive(RuleBasedStateMachine):
    tally: Tally
    workdir: Path

    def __init__(self) -> None:
        super().__init__()
        self.tally.examples += 1
        self.base = Path(tempfile.mkdtemp(dir=self.workdir))
        self.sdcard, self.archive = self.base / "sdcard", self.base / "archive"
        for folder in FOLDERS:
            (self.sdcard / folder).mkdir(parents=True, exist_ok=True)
        self.phone = EmulatedPhone(self.sdcard, shell=False).start()
        self.clock = 1_709_550_000  # the phone's clock, moved on by every change
        self.on_phone: dict[str, bytes] = {}  # path below sdcard -> content
        self.ever: set[str] = set()  # every content the phone ever held
        self.must_have: set[str] = set()  # what was on the phone when a backup succeeded
        self.drop_after: int | None = None

    def teardown(self) -> None:
        self.phone.stop()
        shutil.rmtree(self.base)

    def _step(self) -> None:
        self.tally.steps += 1

    def _write(self, path: str, content: bytes) -> None:
        target = self.sdcard / path
        target.write_bytes(content)
        self.clock += 7
        os.utime(target, (self.clock, self.clock))
        self.on_phone[path] = content
        self.ever.add(sha256(content))

    # --- what happens to the phone -----------------------------------------------------

    @rule(folder=st.sampled_from(FOLDERS), name=st.sampled_from(NAMES), content=CONTENT)
    def record_a_note(self, folder: str, name: str, content: bytes) -> None:
        """A new note (or, where the name is taken, WhatsApp writing over it)."""
        self._step()
        self._write(f"{folder}/{name}", content)

    @precondition(lambda self: self.on_phone)
    @rule(data=st.data())
    def delete_a_note(self, data: st.DataObject) -> None:
        self._step()
        path = data.draw(st.sampled_from(sorted(self.on_phone)))
        (self.sdcard / path).unlink()
        del self.on_phone[path]

    @precondition(lambda self: self.on_phone)
    @rule(data=st.data(), folder=st.sampled_from(FOLDERS), name=st.sampled_from(NAMES))
    def move_a_note(self, data: st.DataObject, folder: str, name: str) -> None:
        """Renamed or moved: same bytes, same mtime, another path (replacing what is there)."""
        self._step()
        source, target = data.draw(st.sampled_from(sorted(self.on_phone))), f"{folder}/{name}"
        os.replace(self.sdcard / source, self.sdcard / target)
        self.on_phone[target] = self.on_phone.pop(source)

    @precondition(lambda self: self.on_phone)
    @rule(data=st.data(), content=CONTENT)
    def change_a_note(self, data: st.DataObject, content: bytes) -> None:
        """New bytes at the same path: the old version stays archived, the new one joins it."""
        self._step()
        self._write(data.draw(st.sampled_from(sorted(self.on_phone))), content)

    @rule(after=st.integers(min_value=0, max_value=2_000))
    def drop_the_connection_during_the_next_backup(self, after: int) -> None:
        self._step()
        self.drop_after = after

    # --- the backup and the invariant ------------------------------------------------------

    @rule()
    def run_a_backup(self) -> None:
        self._step()
        self.tally.backups += 1
        # The drop lands inside what this backup must copy, so that it always fires.
        archived = set(archive_state(self.archive, self.ever).copies)
        pending = sum(len(c) for c in set(self.on_phone.values()) if sha256(c) not in archived)
        faulty = self.drop_after is not None and pending > 0 and EmulatedPhone(
            self.sdcard, shell=False, faults=Faults(drop_after_bytes=self.drop_after % pending)
        )
        self.drop_after = None
        phone = faulty.start() if faulty else self.phone
        try:
            result = run_cli("backup", self.archive, "--tcp", phone.address)
        finally:
            if faulty:
                faulty.stop()
        dropped = bool(faulty) and faulty.faults_fired["drop"] == 1
        assert dropped == bool(faulty), "the drop was set inside the bytes to copy, yet did not fire"
        self.tally.drops += dropped
        assert result.exit_code == (17 if dropped else result.exit_code) and result.exit_code in (0, 3, 17), result.stderr
        if result.exit_code in (0, 3):
            self.must_have |= {sha256(content) for content in self.on_phone.values()}
        state = archive_state(self.archive, self.ever)
        self.tally.lost += len(self.must_have - set(state.copies))
        self.tally.partial += len(state.partial)
        assert state.clean, state  # nothing partial, and verify finds the catalog and files agreeing
        assert self.must_have <= set(state.copies), "a note the phone held at a successful backup is missing"
        assert set(state.copies.values()) <= {1}, "a note is archived twice"


def test_the_archive_always_equals_the_model(tmp_path, monkeypatch, figures):
    # Hundreds of backups in one process: read the adb key once (RSA key checks take ~40 ms).
    monkeypatch.setattr(keys, "load_signer", functools.cache(keys.load_signer))
    tally = Tally()
    machine = type("Machine", (PhoneAndArchive,), {"tally": tally, "workdir": tmp_path})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck),
    ))
    row = figures.row("Model-based (hypothesis)")
    row.case(cases=tally.steps, fired=tally.drops, lost=tally.lost, partial=tally.partial)
    row.notes.update({"examples": tally.examples, "backups": tally.backups})
    assert tally.steps >= MIN_STEPS
    assert tally.drops > 0
