"""The measurements: for each phone tree and link profile, repetitions of
(a) `adb pull` of the voice-note folders and `adb push` of the same folders back to the
phone, with each Google adb (29 and 36), (b) a first backup into an empty archive,
(c) the same backup again (nothing new), (d) the backup after 10 new notes, and
(e) a first backup through adb 36's server holding the phone (adbvoice's fallback when
a server owns a USB phone), with (a) alternately before and after (b)-(e), so drift in
the machine hits both sides.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from adbvoice.emulator import EmulatedPhone, LinkProfile
from adbvoice.emulator.auth import AuthPolicy
from adbvoice.emulator.phonetree import PhoneTree, add_notes, build_phone_tree
from adbvoice.whatsapp import SDCARD, VOICE_SOURCES
from bench.clients import GOOGLE_ADBS, AdbServer, Adbvoice, ChildRun
from bench.wire import WireStats, explain_turns, wire_stats

PROFILES = {"loopback": LinkProfile.loopback(), "usb2": LinkProfile.usb2(), "wifi": LinkProfile.wifi()}
PULLS = {version: f"{version} pull" for version in GOOGLE_ADBS}  # the baselines a backup is held to
PUSHES = {version: f"{version} push" for version in GOOGLE_ADBS}  # the baselines for putting notes back
FIRST, NOOP, NEW10 = "first backup", "no-op sync", "10 new notes"
VIA_SERVER = "first, via adb server"
SERVER_ADB = "adb 36"  # the server a user's phone is held by today
GOOGLE_CASES = (*PULLS.values(), *PUSHES.values())
CASES = (*GOOGLE_CASES, FIRST, NOOP, NEW10, VIA_SERVER)
NEW_NOTES = 10
TURNS_SHOWN = 40  # of the no-op sync's round trips, in the report


@dataclass(frozen=True)
class TreeSpec:
    notes: int
    big_file_bytes: int | None = None

    @property
    def label(self) -> str:
        big = f" + {self.big_file_bytes / 1e6:.0f} MB file" if self.big_file_bytes else ""
        return f"{self.notes:,} notes{big}"


@dataclass(frozen=True)
class Sample:
    case: str
    rep: int
    run: ChildRun
    wire: WireStats


@dataclass
class Cell:
    """Every sample of one tree under one link profile."""

    tree: TreeSpec
    profile: str
    files: int  # files in the voice-note folders (what adb pull copies)
    folder_bytes: int
    samples: list[Sample] = field(default_factory=list)
    noop_turns: list[str] = field(default_factory=list)  # where the last no-op sync's round trips went

    def of(self, case: str) -> list[Sample]:
        return [s for s in self.samples if s.case == case]


def build_tree(spec: TreeSpec, root: Path) -> PhoneTree:
    return build_phone_tree(root, notes=spec.notes, big_file_bytes=spec.big_file_bytes)


def voice_folders(tree: PhoneTree) -> list[Path]:
    """The voice-note folders this phone has: what adbvoice backs up by default."""
    folders = [tree.root / s.path.removeprefix(SDCARD + "/") for s in VOICE_SOURCES]
    return [f for f in folders if f.is_dir()]


@contextmanager
def new_notes(tree: PhoneTree, seed: int) -> Iterator[None]:
    """10 notes recorded since the last backup; removed afterwards so every repetition
    starts from the same tree."""
    files_before = {p for p in tree.root.rglob("*")}
    notes_before = list(tree.notes)
    add_notes(tree, NEW_NOTES, seed=seed)
    try:
        yield
    finally:
        added = sorted({p for p in tree.root.rglob("*")} - files_before, key=lambda p: len(p.parts), reverse=True)
        for path in added:
            path.rmdir() if path.is_dir() else path.unlink()
        tree.notes[:] = notes_before


class Bench:
    """One adbvoice home and one adb server for the whole run; a phone per cell.

    What a measurement wrote is set aside, and deleted only when the run ends: on a
    journal-less ext4 (the one these results were measured on), every new file skips one
    by one the inodes freed in the last minute (ext4's recently_deleted()), so deleting
    thousands of files right before a measurement made its file creation up to twice as
    slow, for adb pull and adbvoice alike, which is nothing a user's first backup meets."""

    def __init__(self, work: Path, reps: int, on_line) -> None:  # noqa: ANN001 - print-like callback
        self.work = work
        self.reps = reps
        self.say = on_line
        self._set_aside = work / "set-aside"
        self._set_aside.mkdir(exist_ok=True)
        self._aside = 0
        home = work / "home"
        (home / ".android").mkdir(parents=True, exist_ok=True)
        self.adbvoice = Adbvoice(home)
        self.adbs: dict[str, AdbServer] = {}
        for version in GOOGLE_ADBS:
            self.adbs[version] = AdbServer(work / f"home-{version.replace(' ', '')}", version)

    def close(self) -> None:
        for server in self.adbs.values():
            server.close()
        shutil.rmtree(self._set_aside, ignore_errors=True)

    def put_aside(self, path: Path) -> None:
        """Out of the way, for deletion when the run ends (see the class)."""
        if path.exists():
            self._aside += 1
            path.rename(self._set_aside / str(self._aside))

    def startup_seconds(self) -> list[float]:
        return [self.adbvoice.startup().seconds for _ in range(max(3, self.reps))]

    def run_cell(self, tree: PhoneTree, spec: TreeSpec, profile_name: str) -> Cell:
        folders = voice_folders(tree)
        files = [p for f in folders for p in f.rglob("*") if p.is_file()]
        cell = Cell(spec, profile_name, len(files), sum(p.stat().st_size for p in files))
        profile = PROFILES[profile_name]
        remote = [f"{SDCARD}/{f.relative_to(tree.root).as_posix()}" for f in folders]
        state = self.work / "phone-state"
        with EmulatedPhone(tree.root, auth=AuthPolicy(mode="any"), link=profile, state_dir=state) as phone:
            for server in self.adbs.values():
                server.connect(phone.address)
            try:
                for rep in range(self.reps):
                    if rep % 2 == 0:
                        self._google(cell, phone, folders, remote, rep)
                        self._backups(cell, phone, tree, rep)
                    else:
                        self._backups(cell, phone, tree, rep)
                        self._google(cell, phone, folders, remote, rep)
            finally:
                for server in self.adbs.values():
                    server.disconnect(phone.address)
        self.put_aside(state)
        return cell

    def _measure(self, cell: Cell, phone: EmulatedPhone, case: str, rep: int, action) -> None:  # noqa: ANN001
        # Start each run with nothing waiting to be written back: an fsync on ext4 (data=ordered)
        # would otherwise also flush what the previous run (adb pull never syncs) left dirty.
        os.sync()
        phone.log.clear()
        run = action()
        time.sleep(max(0.05, 2 * phone.link.rtt_s))  # let the last messages cross the link
        records = phone.log.records()
        sample = Sample(case, rep, run, wire_stats(records, phone.link))
        cell.samples.append(sample)
        if case == NOOP:
            cell.noop_turns = explain_turns(records, TURNS_SHOWN)
        self.say(f"  {cell.tree.label}, {cell.profile}, rep {rep + 1}: {case:13} {run.seconds:8.3f} s  "
                 f"{sample.wire.turns:6d} round trips  {run.peak_rss_kb / 1024:6.1f} MB peak RSS")

    def _google(self, cell: Cell, phone: EmulatedPhone, folders: Sequence[Path], remote: Sequence[str], rep: int) -> None:
        """Each adb's pull of the voice-note folders, then its push of them to the phone's
        /data/local/tmp (a folder made beforehand: adb pushes several sources into one)."""
        for version, server in self.adbs.items():
            into = self.work / "pulled"
            try:
                self._measure(cell, phone, PULLS[version], rep, lambda: server.pull(phone.address, remote, into))
            finally:
                self.put_aside(into)
        for version, server in self.adbs.items():
            target = phone.state_dir / "data" / "local" / "tmp" / "pushed"
            target.mkdir()
            try:
                self._measure(cell, phone, PUSHES[version], rep,
                              lambda: server.push(phone.address, folders, "/data/local/tmp/pushed/"))
            finally:
                self.put_aside(target)

    def _backups(self, cell: Cell, phone: EmulatedPhone, tree: PhoneTree, rep: int) -> None:
        archive = self.work / "archive"
        try:
            backup = lambda: self.adbvoice.backup(archive, phone.address)  # noqa: E731
            self._measure(cell, phone, FIRST, rep, backup)
            self._measure(cell, phone, NOOP, rep, backup)
            with new_notes(tree, seed=100 + rep):
                self._measure(cell, phone, NEW10, rep, backup)
            self.put_aside(archive)
            server_port = self.adbs[SERVER_ADB].port
            via_server = lambda: self.adbvoice.backup(archive, phone.address, server_port=server_port)  # noqa: E731
            self._measure(cell, phone, VIA_SERVER, rep, via_server)
        finally:
            self.put_aside(archive)
