"""A person transcribes the archive offline and finds a note by what it says: real espeak-ng
speech backed up from the emulated phone, heard by a real Whisper model (tiny.en, and the
multilingual base where the language matters), searched with SQLite FTS5."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from tests.conftest import free_port, run_cli, run_process
from tests.speech import SPOKEN, archive_path_of, model, spoken_phone

BIRTHDAY = archive_path_of("PTT-20240429-WA0001.opus")
STATION = archive_path_of("PTT-20240430-WA0002.opus")
SPANISH = archive_path_of("PTT-20240501-WA0003.opus")
NOT_AUDIO = archive_path_of("PTT-20240502-WA0004.opus")
EMPTY = archive_path_of("PTT-20240503-WA0005.opus")


@pytest.fixture(scope="module")
def spoken_archive(tmp_path_factory, session_key) -> Path:
    """The spoken notes, backed up from the emulated phone over TCP: an archive not yet transcribed."""
    base = tmp_path_factory.mktemp("spoken")
    root = base / "archive"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))
        with EmulatedPhone(spoken_phone(base / "sdcard")) as phone:
            result = run_cli("backup", root, "--tcp", phone.address, "--adb-key", session_key)
    assert result.exit_code == 3, result.stderr  # the two notes that hold no audio are flagged
    return root


@pytest.fixture(scope="module")
def transcribed(spoken_archive, tmp_path_factory) -> Path:
    """The same archive after one `transcribe` with tiny.en."""
    root = tmp_path_factory.mktemp("transcribed") / "archive"
    shutil.copytree(spoken_archive, root)
    result = run_cli("transcribe", root, "--model", model("tiny.en"))
    assert result.exit_code == 3, result.stderr  # the two notes without audio are skipped
    return root


def copy_of(archive: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(archive, target)
    return target


def transcripts(archive: Path) -> list[tuple]:
    db = sqlite3.connect(archive / ".adbvoice" / "catalog.sqlite")
    try:
        return db.execute("SELECT sha256, model, language, language_how, text, error FROM transcripts").fetchall()
    finally:
        db.close()


def test_transcribe_then_search_finds_the_note_by_its_words(transcribed):
    found = run_cli("search", "--archive", transcribed, "birthday")
    assert found.exit_code == 0, found.stderr
    first, context = found.stdout.splitlines()[:2]
    assert BIRTHDAY in first and first.startswith("2024-04-29  0:04")
    assert "Happy [birthday], Grandma!" in context  # in a pipe the match is in brackets

    station = json.loads(run_cli("search", "--archive", transcribed, "STATION", "late", "--json").stdout)
    assert [hit["archive_path"] for hit in station] == [STATION]
    assert station[0]["transcript"]["language"] == "en" and station[0]["transcript"]["language_how"] == "only"
    assert "[late]" in station[0]["snippet"] and "[station]" in station[0]["snippet"]
    assert run_cli("search", "--archive", transcribed, "birth").stdout.startswith("2024-04-29")  # a prefix finds it
    assert run_cli("search", "--archive", transcribed, "birthday", "--since", "2024-04-30").stdout == ""
    assert BIRTHDAY in run_cli("search", "--archive", transcribed, "birthday", "--until", "2024-04").stdout
    nothing = run_cli("search", "--archive", transcribed, "zebra")
    assert nothing.exit_code == 0 and nothing.stdout == "" and "0 notes found" in nothing.stderr


def test_the_words_are_the_ones_spoken_and_each_sentence_has_its_time(transcribed):
    listed = {n["archive_path"]: n for n in json.loads(run_cli("ls", transcribed, "--json").stdout)}
    said = listed[BIRTHDAY]["transcript"]
    assert said["text"].lower().rstrip(".!") == SPOKEN["PTT-20240429-WA0001.opus"][1].lower().rstrip(".!")
    assert said["model"] == str(model("tiny.en"))
    assert said["segments"][0]["start_s"] == 0.0 and said["segments"][-1]["end_s"] <= listed[BIRTHDAY]["duration_s"] + 1
    assert listed[NOT_AUDIO]["transcript"] is None

    info = run_cli("info", BIRTHDAY, "--archive", transcribed)
    assert info.exit_code == 0, info.stderr
    shown = info.stdout[info.stdout.index("transcript"):]
    assert "[0:00 → 0:0" in shown and "birthday" in shown.lower() and "(en, English-only model" in shown


def test_a_note_without_audio_is_skipped_with_its_reason_once(spoken_archive, tmp_path):
    archive = copy_of(spoken_archive, tmp_path)
    first = run_cli("transcribe", archive, "--model", model("tiny.en"))
    assert first.exit_code == 3
    skipped = [line for line in first.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(skipped) == 2 and any(NOT_AUDIO in s and "cannot decode" in s for s in skipped), skipped
    assert any(EMPTY in s for s in skipped)
    assert first.stdout.startswith("3 notes transcribed")

    again = run_cli("transcribe", archive, "--model", model("tiny.en"))  # nothing left: no model is even loaded
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith("0 notes transcribed (0 s of audio in") and "5 already done, 0 skipped" in again.stdout


def test_since_and_until_choose_the_notes_and_another_model_transcribes_them_again(spoken_archive, tmp_path):
    archive = copy_of(spoken_archive, tmp_path)
    some = run_cli("transcribe", archive, "--model", model("tiny.en"), "--since", "2024-04-30", "--until", "2024-04")
    assert some.exit_code == 0, some.stderr
    assert some.stdout.startswith("1 note transcribed")
    assert [row[4] is not None for row in transcripts(archive)] == [True]
    assert run_cli("search", "--archive", archive, "station").stdout.count(".opus") == 1
    assert run_cli("transcribe", archive, "--until", "2021").stdout.startswith("0 notes transcribed")
    assert run_cli("transcribe", archive, "--since", "May 2024").exit_code == 2


def test_the_language_is_detected_forced_or_chosen_from_the_users_languages(spoken_archive, tmp_path, home):
    archive = copy_of(spoken_archive, tmp_path)
    base = model("base")
    detected = run_cli("transcribe", archive, "--model", base, "--since", "2024-05-01", "--until", "2024-05-01")
    assert detected.exit_code == 0, detected.stderr
    (row,) = transcripts(archive)
    assert row[2:4] == ("es", "detected")
    for query in (["cumpleanos"], ["CANCION", "preciosa"], ["cumpleaños"]):  # accents folded, either way
        assert json.loads(run_cli("search", "--archive", archive, *query, "--json").stdout)[0]["archive_path"] == SPANISH

    config = home / ".config" / "adbvoice" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('languages = ["fr", "de"]\n')  # neither is likely: the first is the fallback
    db = sqlite3.connect(archive / ".adbvoice" / "catalog.sqlite")
    db.execute("DELETE FROM transcripts")
    db.execute("DELETE FROM transcript_words")
    db.commit()
    db.close()
    fallback = run_cli("transcribe", archive, "--model", base, "--since", "2024-05-01", "--until", "2024-05-01", "--json")
    assert json.loads(fallback.stdout)["languages"] == {"fr": 1}
    assert transcripts(archive)[0][2:4] == ("fr", "fallback")

    config.write_text('languages = ["en", "es"]\nlanguage = "en"\n')  # a forced language wins over the list
    english = run_cli("transcribe", archive, "--model", base, "--since", "2024-04-30", "--until", "2024-04-30")
    assert english.exit_code == 0, english.stderr
    assert ("en", "forced") in [row[2:4] for row in transcripts(archive)]


def test_catalog_rebuild_keeps_the_transcripts_and_verify_ignores_them(transcribed, tmp_path):
    archive = copy_of(transcribed, tmp_path)
    before = sorted(transcripts(archive))
    (archive / STATION).rename(archive / "2024/04/30/moved.opus")  # matched by content, not by path
    assert run_cli("catalog", "rebuild", archive).exit_code == 0
    assert sorted(transcripts(archive)) == before
    hit = json.loads(run_cli("search", "--archive", archive, "station", "--json").stdout)
    assert [h["archive_path"] for h in hit] == ["2024/04/30/moved.opus"]
    assert run_cli("verify", archive).exit_code == 0


def test_words_of_scripts_written_without_spaces_are_found(transcribed, tmp_path):
    from adbvoice.archive.catalog import Catalog, TranscriptRow

    archive = copy_of(transcribed, tmp_path)
    notes = {n["archive_path"]: n["sha256"] for n in json.loads(run_cli("ls", archive, "--json").stdout)}
    said = {NOT_AUDIO: ("zh", "奶奶，祝你生日快乐！我们在厨房给你唱歌。"), EMPTY: ("th", "สุขสันต์วันเกิดนะคุณยาย")}
    catalog = Catalog.open(archive / ".adbvoice" / "catalog.sqlite")
    try:
        for path, (language, text) in said.items():
            catalog.add_transcript(TranscriptRow(notes[path], "by-hand", language, 1.0, "forced", text,
                                                 [(0.0, 1.0, text)], 1.0, None, "2024-05-04T00:00:00+00:00"))
    finally:
        catalog.close()
    for words, expected in ((["生日快乐"], NOT_AUDIO), (["生日"], NOT_AUDIO), (["唱歌"], NOT_AUDIO),
                            (["วันเกิด"], EMPTY), (["奶奶", "厨房"], NOT_AUDIO)):
        hits = json.loads(run_cli("search", "--archive", archive, *words, "--json").stdout)
        assert [h["archive_path"] for h in hits] == [expected], words
    assert "祝你[生日]快乐" in run_cli("search", "--archive", archive, "生日").stdout
    assert json.loads(run_cli("search", "--archive", archive, "日生", "--json").stdout) == []  # in order, adjacent


def test_each_mistake_a_user_can_make_gets_one_line_and_its_own_exit_code(transcribed, tmp_path, monkeypatch):
    archive = copy_of(transcribed, tmp_path)
    db = sqlite3.connect(archive / ".adbvoice" / "catalog.sqlite")
    db.execute("DELETE FROM transcripts")
    db.commit()
    db.close()

    def fails(code, *args, says):
        result = run_cli("transcribe", archive, *map(str, args))
        assert result.exit_code == code, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr, result.stderr

    with monkeypatch.context() as patch:
        patch.setitem(__import__("sys").modules, "faster_whisper", None)  # the extra is not installed
        fails(40, says="pip install 'adbvoice[transcribe]'")
    fails(41, "--model", "enormous", says="no speech model is called 'enormous': use one of tiny")
    fails(41, "--model", tmp_path, says="is not a speech model folder")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    # The hub unreachable (no network); a process of its own, as huggingface_hub reads its
    # variables once, when it is imported.
    offline = run_process("transcribe", archive, "--model", "tiny",
                          env={**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert offline.exit_code == 42 and "the model 'tiny' is not on disk and could not be downloaded" in offline.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fails(42, "--model", "tiny", says="the model 'tiny' is not on disk, and HF_HUB_OFFLINE forbids downloading it")
    fails(44, "--model", model("tiny.en"), "--language", "es", says="does not know the language 'es' (English only")
    fails(44, "--model", model("base"), "--language", "klingon", says="does not know the language 'klingon'")
    assert run_cli("transcribe", tmp_path, "--model", model("tiny.en")).exit_code == 24
    assert run_cli("search", "--archive", tmp_path, "birthday").exit_code == 24
    as_json = run_cli("search", "--archive", tmp_path, "birthday", "--json")
    assert json.loads(as_json.stdout)["error"]["exit_code"] == 24  # a script that asked for JSON gets JSON
    assert run_cli("search", "--archive", archive, "--", "-?!").exit_code == 2

    fd = os.open(archive / ".adbvoice" / "transcribe.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another transcribe holds the archive
        os.pwrite(fd, b"adbvoice transcribe pid 4242 since 2024-05-04 10:00:00\n", 0)
        started = time.monotonic()
        fails(43, "--model", model("tiny.en"), says="is being transcribed by adbvoice transcribe pid 4242")
        assert time.monotonic() - started < 30  # it did not wait for the other run
    finally:
        os.close(fd)
    assert transcripts(archive) == []


@pytest.fixture(scope="module")
def six_notes(tmp_path_factory, session_key) -> Path:
    """The demo phone's six spoken notes (four seconds each), backed up."""
    from adbvoice.emulator.phonetree import build_demo_phone

    base = tmp_path_factory.mktemp("six")
    tree = build_demo_phone(base / "sdcard")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))
        with EmulatedPhone(tree.root) as phone:
            result = run_cli("backup", base / "archive", "--tcp", phone.address, "--adb-key", session_key)
    assert result.exit_code == 0, result.stderr
    return base / "archive"


def consistent_rows(archive: Path) -> int:
    """How many transcripts the catalog holds, each checked whole: words or a reason, and
    exactly the indexed words of every transcript that has some."""
    db = sqlite3.connect(f"{(archive / '.adbvoice' / 'catalog.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT rowid, text, error, segments FROM transcripts").fetchall()
        indexed = dict(db.execute("SELECT rowid, words FROM transcript_words").fetchall())
    finally:
        db.close()
    for rowid, text, error, segments in rows:
        assert (text is None) != (error is None)
        assert json.loads(segments) or error
        assert indexed.get(rowid) == text or text is None
    assert len(indexed) == sum(text is not None for _, text, _, _ in rows)
    return len(rows)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigkill"])
def test_a_run_stopped_mid_way_leaves_whole_rows_and_the_next_run_completes(six_notes, tmp_path, stop):
    import signal
    import subprocess
    import sys

    archive = copy_of(six_notes, tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "adbvoice", "transcribe", str(archive), "--model",
                                str(model("tiny.en"))], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while consistent_rows(archive) < 1:  # the backup's catalog already has the (empty) tables
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.02)
    if stop == "ctrl-c":  # meanwhile a second run finds the archive taken, and leaves at once
        second = run_cli("transcribe", archive, "--model", model("tiny.en"))
        assert second.exit_code == 43 and f"adbvoice transcribe pid {process.pid}" in second.stderr, second.stderr
    process.send_signal(signal.SIGINT if stop == "ctrl-c" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    if stop == "ctrl-c":
        assert process.returncode == 130 and "interrupted" in stderr, stderr
    else:
        assert process.returncode == -signal.SIGKILL
    done = consistent_rows(archive)
    assert 1 <= done < 6, "the fault did not land mid-run"

    finish = run_cli("transcribe", archive, "--model", model("tiny.en"))
    assert finish.exit_code == 0, finish.stderr
    assert finish.stdout.startswith(f"{6 - done} note") and f"{done} already done" in finish.stdout
    assert consistent_rows(archive) == 6


def test_on_a_terminal_the_matching_words_stand_out(transcribed):
    from tests.conftest import run_on_terminal

    shown = run_on_terminal("search", "--archive", transcribed, "kitchen")
    assert shown.exit_code == 0, shown.stderr
    assert "\x1b[1mkitchen\x1b[0m" in shown.stdout and "[kitchen]" not in shown.stdout
    assert "1 note found" in shown.stderr
