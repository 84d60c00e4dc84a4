"""A person leaves `adbvoice watch` running: each phone is backed up once every time it
arrives, left alone while it stays, asked to allow this computer when it has not yet, and
Ctrl-C or SIGTERM ends the watch at any moment with nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from adbvoice.emulator import AuthPolicy, EmulatedPhone, LinkProfile
from adbvoice.emulator.phonetree import add_notes, build_phone_tree
from adbvoice.phone import usb
from tests.conftest import archived_files, free_port, run_cli
from tests.test_backup_errors import BridgedUsb, adb_server, assert_archive_consistent  # noqa: F401 - a fixture

WAIT_S = 60


def wait_until(condition: Callable[[], bool], what: str, details: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}; {details()}"
        time.sleep(0.02)


class Watching:
    """`adbvoice watch` as a real process, its output read line by line as it comes."""

    def __init__(self, *args: object) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adbvoice", "watch", *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},  # SIGABRT shows where a stuck watch is
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def backups(self) -> list[str]:
        return [line for line in self.out if "voice notes" in line]

    def looks(self, present: str | None = None) -> int:
        """Heartbeats (-v) so far, or those that saw exactly `present` ("none": no phone)."""
        beats = [line for line in self.err if line.startswith("watching ")]
        return len([b for b in beats if present is None or b.endswith(f"phones present: {present}")])

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        wait_until(lambda: condition() or self.process.poll() is not None, what, self.output)
        assert self.process.poll() is None, f"watch ended while waiting for {what}; {self.output()}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait()
            for reader in self._readers:
                reader.join(WAIT_S)
            raise AssertionError(f"watch did not stop on {signal.Signals(sig).name}; {self.output()}") from None
        for reader in self._readers:
            reader.join(WAIT_S)
        return code

    def output(self) -> str:
        return "stdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)

    def __enter__(self) -> Watching:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def catalog_runs(archive: Path) -> int:
    import sqlite3

    with sqlite3.connect(archive / ".adbvoice" / "catalog.sqlite") as db:
        return db.execute("SELECT count(*) FROM runs").fetchone()[0]


def test_a_wifi_phone_is_backed_up_when_it_appears_left_alone_while_it_stays_and_again_when_it_returns(
    phone_tree, archive, tmp_path
):
    address = f"127.0.0.1:{free_port()}"
    phone = EmulatedPhone(phone_tree.root, port=int(address.split(":")[1]))
    log = tmp_path / "watch.log"
    with Watching(archive, "--tcp", address, "--interval", "0.1", "--log-file", log, "-v") as watching:
        watching.wait_for(lambda: watching.looks("none") >= 2, "looks with no phone")
        assert watching.backups() == [] and not archive.exists()

        phone.start()
        watching.wait_for(lambda: len(watching.backups()) == 1, "the first backup")
        assert f"{sum(1 for n in phone_tree.notes if n.is_note and n.kind != 'audio')} new voice notes" \
            in watching.backups()[0]
        seen = watching.looks(address)
        watching.wait_for(lambda: watching.looks(address) >= seen + 5, "more looks while the phone stays")
        assert len(watching.backups()) == 1 and catalog_runs(archive) == 1

        phone.stop()
        added = [n for n in add_notes(phone_tree, 3) if n.is_note]
        gone = watching.looks("none")
        watching.wait_for(lambda: watching.looks("none") > gone, "a look without the phone")
        phone.start()
        watching.wait_for(lambda: len(watching.backups()) == 2, "the backup after the phone came back")
        code = watching.stop()
    phone.stop()

    assert code == 0, watching.output()
    assert f"{len(added)} new voice notes" in watching.backups()[1]
    assert watching.backups()[1].startswith(time.strftime("%Y-")) and "Pixel 7 (EMU0001): " in watching.backups()[1]
    assert "Traceback" not in watching.output()
    assert [line.split(" outcome=")[1].split()[0] for line in log.read_text().splitlines()] == ["warnings", "ok"]


def test_without_v_there_is_one_line_per_backup_and_no_heartbeat(phone, phone_tree, archive):
    with Watching(archive, "--tcp", phone.address, "--interval", "0.05") as watching:
        watching.wait_for(lambda: len(watching.backups()) == 1, "the backup")
        wait_until(lambda: phone.connections_accepted >= 10, "more looks")  # each look is one connect
        code = watching.stop(signal.SIGINT)
    assert code == 0 and watching.err == [] and len(watching.out) == 1, watching.output()


def test_sigterm_mid_copy_ends_the_watch_with_nothing_partial_and_the_next_run_resumes(long_copy_tree, archive):
    slow = LinkProfile(rtt_s=0.002, bandwidth_Bps=600_000)
    with EmulatedPhone(long_copy_tree.root, link=slow) as phone:
        with Watching(archive, "--tcp", phone.address, "--interval", "0.1") as watching:
            watching.wait_for(lambda: len(archived_files(archive)) > 0, "the first notes archived")
            code = watching.stop()
    assert code == 130, watching.output()
    assert watching.err[-1].startswith("adbvoice: interrupted") and "Traceback" not in watching.output()
    assert watching.backups() == []
    assert 0 < len(archived_files(archive)) < sum(1 for n in long_copy_tree.notes if n.is_note and n.kind != "audio")
    assert_archive_consistent(archive, long_copy_tree)
    with EmulatedPhone(long_copy_tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 3
    assert_archive_consistent(archive, long_copy_tree)


def test_phones_held_by_an_adb_server_are_each_backed_up_once_and_an_unauthorized_one_is_waited_for(
    tmp_path, archive, adb_server
):
    first = build_phone_tree(tmp_path / "first", notes=4, seed=1, business=False, legacy=False, broken=False)
    second = build_phone_tree(tmp_path / "second", notes=5, seed=2, business=False, legacy=False, broken=False)
    waiting = AuthPolicy(mode="pending", pending_seconds=2)
    with EmulatedPhone(first.root, serial="FIRST01") as one, \
            EmulatedPhone(second.root, serial="SECOND02", auth=waiting) as two:
        with Watching(archive, "--interval", "0.1", "-v") as watching:
            watching.wait_for(lambda: watching.looks("none") >= 1, "a look with no phone")
            adb_server("connect", one.address)
            adb_server("connect", two.address)  # the phone shows "Allow USB debugging?" for 2 s
            watching.wait_for(lambda: len(watching.backups()) == 2, "both backups")
            seen = watching.looks()
            watching.wait_for(lambda: watching.looks() >= seen + 5, "more looks while both stay")
            code = watching.stop()
    assert code == 0, watching.output()
    backups = sorted(watching.backups())
    assert len(backups) == 2 and "Pixel 7 (FIRST01): 4 new voice notes" in backups[0]
    assert "Pixel 7 (SECOND02): 5 new voice notes" in backups[1]
    prompts = [line for line in watching.err if 'tap "Allow"' in line]
    assert prompts == [f'{two.address}: unlock the phone and tap "Allow" on the "Allow USB debugging?" prompt; '
                       "watching until you do"], watching.output()


def test_usb_phones_are_backed_up_once_per_plug_in(tmp_path, archive, monkeypatch):
    """The USB path for real above adb-shell's transport (see BridgedUsb), in-process: a
    thread plugs and unplugs phones (one asks to be allowed the first time), then presses
    Ctrl-C (SIGINT to this process)."""
    trees = {s: build_phone_tree(tmp_path / s, notes=3, seed=i, business=False, legacy=False, broken=False)
             for i, s in enumerate(("AAA111", "BBB222"))}
    log = tmp_path / "watch.log"
    looks = []
    plugged: dict[str, BridgedUsb] = {}

    def usb_transports():
        looks.append(time.monotonic())
        return list(plugged.values())

    monkeypatch.setattr(usb, "transports", usb_transports)

    def logged() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    def wait_looks(count: int) -> None:
        seen = len(looks)
        wait_until(lambda: len(looks) >= seen + count, "looks", logged)

    problems = []

    def user(phones: dict[str, EmulatedPhone]) -> None:
        try:
            for serial, phone in phones.items():
                plugged[serial] = BridgedUsb(serial, phone.address)
            wait_until(lambda: len(logged()) == 2, "both phones backed up", logged)
            wait_looks(5)
            assert len(logged()) == 2
            del plugged["BBB222"]
            add_notes(trees["BBB222"], 2)
            wait_looks(2)
            plugged["BBB222"] = BridgedUsb("BBB222", phones["BBB222"].address)
            wait_until(lambda: len(logged()) == 3, "the replugged phone backed up", logged)
            wait_looks(2)
        except AssertionError as exc:
            problems.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    asks_once = AuthPolicy(mode="pending", pending_seconds=1)  # then trusts this computer
    with EmulatedPhone(trees["AAA111"].root, serial="AAA111") as a, \
            EmulatedPhone(trees["BBB222"].root, serial="BBB222", auth=asks_once) as b:
        story = threading.Thread(target=user, args=({"AAA111": a, "BBB222": b},))
        story.start()
        result = run_cli("watch", archive, "--interval", "0.05", "--log-file", log)
        story.join()
    assert not problems, problems
    assert result.exit_code == 0, result.stderr
    lines = logged()
    assert sorted(line.split('device="')[1].split('"')[0] for line in lines[:2]) == \
        ["Pixel 7 (AAA111)", "Pixel 7 (BBB222)"]
    assert 'device="Pixel 7 (BBB222)"' in lines[2] and " new=2 " in lines[2]
    assert len(result.stdout.splitlines()) == 3
    assert [line for line in result.stderr.splitlines() if 'tap "Allow"' in line] == [
        'Unlock the phone and tap "Allow" on the "Allow USB debugging?" prompt (waiting up to 60 s)'
    ]


def test_a_backup_that_fails_is_one_line_and_the_watch_goes_on(tmp_path, archive):
    bare = tmp_path / "bare-sdcard"
    (bare / "DCIM").mkdir(parents=True)
    with EmulatedPhone(bare) as phone:
        with Watching(archive, "--tcp", phone.address, "--interval", "0.05", "-v") as watching:
            watching.wait_for(lambda: any("no WhatsApp voice-note folder" in line for line in watching.err),
                              "the failed backup")
            seen = watching.looks(phone.address)
            watching.wait_for(lambda: watching.looks(phone.address) >= seen + 5, "more looks")
            code = watching.stop()
    assert code == 0
    failures = [line for line in watching.err if line.startswith("adbvoice: ")]
    assert len(failures) == 1 and f" {phone.address}: no WhatsApp voice-note folder on Pixel 7" in failures[0]
    assert watching.out == []
