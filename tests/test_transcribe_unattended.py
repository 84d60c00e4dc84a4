"""Transcribing with nobody watching: `backup --transcribe`, and `transcribe = true` in the
config file for cron and `watch` — always after the backup's own result is final, which a
transcription problem never changes."""

from __future__ import annotations

import json
import signal

import pytest

from adbvoice.emulator import EmulatedPhone
from tests.conftest import run_cli
from tests.speech import model, spoken_phone
from tests.test_transcripts import BIRTHDAY, consistent_rows
from tests.test_watch import Watching


@pytest.fixture
def spoken(tmp_path):
    with EmulatedPhone(spoken_phone(tmp_path / "sdcard")) as phone:
        yield phone


def searched(archive, *words):
    return [hit["archive_path"] for hit in json.loads(run_cli("search", "--archive", archive, *words, "--json").stdout)]


def test_backup_transcribe_hears_what_it_archived_after_reporting_it(spoken, archive, monkeypatch):
    monkeypatch.setenv("ADBVOICE_MODEL", str(model("tiny.en")))
    result = run_cli("backup", archive, "--tcp", spoken.address, "--transcribe")
    assert result.exit_code == 3, result.stderr  # the backup's own code: two notes hold no audio
    summary, heard = result.stdout.splitlines()
    assert "5 new voice notes" in summary and heard.startswith("3 notes transcribed")
    assert searched(archive, "grandma") == [BIRTHDAY]
    assert consistent_rows(archive) == 5

    again = run_cli("backup", archive, "--tcp", spoken.address, "--transcribe")
    assert again.exit_code == 0 and len(again.stdout.splitlines()) == 1  # nothing new: nothing to say


def test_a_transcription_that_fails_never_fails_the_backup(spoken, archive, monkeypatch):
    monkeypatch.setenv("ADBVOICE_MODEL", "enormous")
    monkeypatch.setenv("ADBVOICE_TRANSCRIBE", "yes")
    result = run_cli("backup", archive, "--tcp", spoken.address)
    assert result.exit_code == 3, result.stderr
    assert "5 new voice notes" in result.stdout
    assert "the backup is complete, but transcribing failed: no speech model is called 'enormous'" in result.stderr
    assert run_cli("verify", archive).exit_code == 0
    quiet = run_cli("backup", archive, "--tcp", spoken.address, "--no-transcribe")
    assert quiet.exit_code == 0 and "transcrib" not in quiet.stderr


def test_watch_transcribes_each_backup_when_the_config_says_so(spoken, archive, home):
    config = home / ".config" / "adbvoice" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'transcribe = true\nmodel = "{model("tiny.en")}"\n')
    with Watching(archive, "--tcp", spoken.address, "--interval", "0.1") as watching:
        watching.wait_for(lambda: any("notes transcribed" in line for line in watching.out), "a transcription")
        assert watching.stop(signal.SIGINT) == 0
    backed, heard = [line for line in watching.out if line.strip()][:2]
    assert "5 new voice notes" in backed and heard.startswith("3 notes transcribed")
    assert searched(archive, "station") == ["2024/04/30/PTT-20240430-WA0002.opus"]


def test_schedule_carries_transcribe_into_the_job(monkeypatch):
    monkeypatch.setenv("ADBVOICE_TRANSCRIBE", "1")
    line = run_cli("schedule", "--every", "1h", "--cron").stdout
    assert " backup " in line and line.rstrip().endswith("--transcribe")
