"""A person lives with their archive: finds notes, counts them, inspects one, and rebuilds
the catalog from the files alone — always on an archive made by a real backup."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from adbvoice.archive import rebuild
from adbvoice.archive.catalog import Catalog
from adbvoice.archive.folder import Archive
from adbvoice.emulator import EmulatedPhone
from tests.conftest import archived_files, run_cli, run_on_terminal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
# What the phone tree put where, in `ls --source` words.
FAMILY_OF_KIND = {"voice": "voice", "broken": "voice", "business": "business",
                  "legacy": "legacy", "legacy-business": "legacy", "audio": "audio"}
FROM_THE_FILES = ["archive_path", "sha256", "size", "recorded_on", "phone_mtime", "codec", "duration_s",
                  "sample_rate", "channels", "bitrate", "vendor", "audio_error"]


def ls_json(archive, *options):
    listed = run_cli("ls", archive, "--format", "json", *options)
    assert listed.exit_code == 0, listed.stderr
    return json.loads(listed.stdout)


def paths(notes):
    return sorted(n["archive_path"] for n in notes)


def one_line_error(result, code):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("adbvoice: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def backup_again(backed_up, archive):
    with EmulatedPhone(backed_up.tree.root) as phone:
        return run_cli("backup", archive, "--tcp", phone.address, "--include-audio")


# --- ls ----------------------------------------------------------------------------------


def test_ls_prints_an_aligned_table_with_lengths_as_minutes_and_human_sizes(backed_up, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # wide enough for every cell whole (see test_new_user.py)
    lines = run_cli("ls", backed_up.root).stdout.splitlines()

    assert len(lines) == len(backed_up.notes)  # not a terminal: no header, one line a note
    starts = {line.index(note["archive_path"]) for line, note in zip(lines, backed_up.notes)}
    assert len(starts) == 1  # the NOTE column starts at the same place on every line
    for line in lines:
        date, clock, length, size, unit = line.split()[:5]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", date) and re.fullmatch(r"\d\d:\d\d", clock)
        assert re.fullmatch(r"\d+:\d\d|-:--", length) and unit in ("B", "KB", "MB")
    shown = run_on_terminal("ls", backed_up.root).stdout.splitlines()
    assert shown[0].split() == ["DATE", "TIME", "LENGTH", "SIZE", "SOURCE", "DEVICE", "NOTE", "AUDIO"]
    assert [line.split() for line in shown[1:]] == [line.split() for line in lines]


def test_ls_narrows_by_day_month_and_year(backed_up):
    june = ls_json(backed_up.root, "--since", "2021-06", "--until", "2021-06")
    assert june and paths(june) == paths(n for n in backed_up.notes if n["recorded_on"].startswith("2021-06"))

    day = june[0]["recorded_on"]
    assert paths(ls_json(backed_up.root, "--since", day, "--until", day)) == paths(
        n for n in backed_up.notes if n["recorded_on"] == day
    )
    assert paths(ls_json(backed_up.root, "--since", "2022")) == paths(
        n for n in backed_up.notes if n["recorded_on"] >= "2022"
    )


def test_ls_narrows_by_source_the_four_families_share_the_archive_out(backed_up):
    kind_of = {n.sha256: n.kind for n in backed_up.tree.notes}
    seen = []
    for family in ("voice", "Business", "legacy", "audio"):
        listed = ls_json(backed_up.root, "--source", family)
        assert listed, family
        assert {FAMILY_OF_KIND[kind_of[n["sha256"]]] for n in listed} == {family.lower()}
        seen += listed
    assert paths(seen) == paths(backed_up.notes)
    both = ls_json(backed_up.root, "--source", "legacy", "--source", "audio")
    assert len(both) == sum(FAMILY_OF_KIND[kind_of[n["sha256"]]] in ("legacy", "audio") for n in backed_up.notes)


def test_ls_narrows_by_device_length_and_readability(backed_up):
    everything = paths(backed_up.notes)
    assert paths(ls_json(backed_up.root, "--device", "pixel 7")) == everything
    assert paths(ls_json(backed_up.root, "--device", "EMU0001")) == everything
    assert ls_json(backed_up.root, "--device", "Galaxy S21") == []

    long_ones = ls_json(backed_up.root, "--min-duration", "0:10")
    short_ones = ls_json(backed_up.root, "--max-duration", "10s")
    assert long_ones and all(n["duration_s"] >= 10 for n in long_ones)
    assert short_ones and all(n["duration_s"] <= 10 for n in short_ones)
    timed = [n for n in backed_up.notes if n["duration_s"] is not None]
    assert len(long_ones) + len(short_ones) == len(timed) + sum(n["duration_s"] == 10 for n in timed)

    broken = {n.sha256 for n in backed_up.tree.notes if n.kind == "broken"}
    unreadable = ls_json(backed_up.root, "--unreadable")
    assert {n["sha256"] for n in unreadable} == broken and all(n["audio_error"] for n in unreadable)


def test_json_and_csv_are_the_same_notes_and_round_trip(backed_up):
    as_json = run_cli("ls", backed_up.root, "--json").stdout
    assert json.loads(as_json) == ls_json(backed_up.root) == backed_up.notes

    table = list(csv.DictReader(io.StringIO(run_cli("ls", backed_up.root, "--format", "csv").stdout)))
    assert len(table) == len(backed_up.notes)
    for row, note in zip(table, backed_up.notes):
        assert list(row) == list(note)
        assert row == {key: "" if value is None else str(value) for key, value in note.items()}
        assert float(row["duration_s"] or "nan") == pytest.approx(note["duration_s"] or float("nan"), nan_ok=True)
    empty = run_cli("ls", backed_up.root, "--format", "csv", "--device", "nobody").stdout
    assert empty.splitlines() == [",".join(backed_up.notes[0])]


@pytest.mark.parametrize(
    "option",
    [["--since", "2021-13"], ["--until", "yesterday"], ["--format", "xml"], ["--source", "work"],
     ["--min-duration", "long"], ["--json", "--format", "csv"]],
)
def test_a_bad_ls_option_is_one_line_and_exit_code_2(backed_up, option):
    message = one_line_error(run_cli("ls", backed_up.root, *option), 2)
    assert option[-1] in message


# --- stats ---------------------------------------------------------------------------------


def test_stats_counts_notes_size_listening_devices_months_and_runs(backed_up):
    result = run_cli("stats", backed_up.root, "--json")
    stats = json.loads(result.stdout)
    notes = backed_up.notes

    assert result.exit_code == 0
    assert stats["notes"] == len(notes) and stats["unreadable"] == sum(bool(n["audio_error"]) for n in notes)
    assert stats["bytes"] == sum(n["size"] for n in notes) == sum(len(b) for b in archived_files(backed_up.root).values())
    assert stats["seconds"] == pytest.approx(sum(n["duration_s"] or 0 for n in notes), abs=0.01)
    assert stats["devices"] == [{"serial": "EMU0001", "model": "Pixel 7", "notes": len(notes),
                                 "bytes": stats["bytes"], "seconds": stats["seconds"]}]
    months = {m["month"]: m["notes"] for m in stats["months"]}
    assert months == {month: sum(n["recorded_on"][:7] == month for n in notes) for month in months}
    assert sum(months.values()) == sum(y["notes"] for y in stats["years"]) == len(notes)
    assert stats["first"]["archive_path"] == notes[0]["archive_path"]
    assert stats["last"]["archive_path"] == notes[-1]["archive_path"]
    assert stats["runs"]["count"] == 2 and stats["runs"]["last"]["outcome"] == "ok"


def test_stats_reads_as_text_and_draws_a_histogram_on_a_terminal(backed_up):
    text = run_cli("stats", backed_up.root).stdout
    assert f"Notes       {len(backed_up.notes)} (3 unreadable)" in text
    assert "Pixel 7 (EMU0001)" in text and "the last started" in text and ": ok (" in text
    assert re.search(r"^  2021-06: 3 notes", text, re.MULTILINE)

    shown = run_on_terminal("stats", backed_up.root).stdout
    rows = re.findall(r"^  (20\d\d) +((?:[·▁▂▃▄▅▆▇█] ){11}[·▁▂▃▄▅▆▇█])  (\d+)$", shown, re.MULTILINE)
    assert [year for year, _, _ in rows] == ["2021", "2022"]
    assert sum(int(count) for _, _, count in rows) == len(backed_up.notes)
    assert "█" in shown and "2021-06:" not in shown


def test_stats_of_an_empty_archive_says_so(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    for folder in [p for p in archive.iterdir() if p.name != ".adbvoice"]:
        shutil.rmtree(folder)
    rebuilt = run_cli("catalog", "rebuild", archive)
    assert rebuilt.exit_code == 3  # every note of the old catalog is gone, and it says so

    text = run_cli("stats", archive).stdout
    assert "Notes       none yet" in text and "2 so far" in text
    assert json.loads(run_cli("stats", archive, "--json").stdout)["first"] is None


# --- info ----------------------------------------------------------------------------------


def test_info_names_a_note_by_id_archive_path_or_file_and_shows_what_mutagen_reads_now(backed_up, monkeypatch):
    note = next(n for n in backed_up.notes if n["codec"] == "opus" and n["source"] == "voice")
    by_id = run_cli("info", note["id"], "--archive", backed_up.root, "--json")
    by_path = run_cli("info", note["archive_path"], "--archive", backed_up.root, "--json")
    monkeypatch.chdir(backed_up.root / Path(note["archive_path"]).parent)
    by_file = run_cli("info", Path(note["archive_path"]).name, "--json")

    assert by_id.exit_code == by_path.exit_code == by_file.exit_code == 0
    assert json.loads(by_id.stdout) == json.loads(by_path.stdout) == json.loads(by_file.stdout)
    info = json.loads(by_id.stdout)
    assert info["catalog"] == note
    assert [s["phone_path"] for s in info["sightings"]] == [note["phone_path"]]
    now = info["now"]
    assert (now["codec"], now["sample_rate"], now["channels"], now["vendor"]) == ("opus", 16000, 1, "WhatsApp")
    assert now["duration_s"] == note["duration_s"] and now["file_size"] == note["size"] and now["error"] is None
    assert now["tags"] == {"adbvoice_note": [note["phone_path"]]}  # the phone tree's own comment

    text = run_cli("info", note["id"], "--archive", backed_up.root).stdout
    for field in note:
        assert re.search(rf"^  {field}\b", text, re.MULTILINE), field
    assert f"tag adbvoice_note = {note['phone_path']}" in text


def test_info_on_a_broken_note_shows_why_it_cannot_be_read(backed_up):
    broken = next(n for n in backed_up.notes if n["audio_error"] and n["size"])
    info = json.loads(run_cli("info", broken["id"], "--archive", backed_up.root, "--json").stdout)
    assert info["now"]["error"] == broken["audio_error"] and info["now"]["file_size"] == broken["size"]


def test_info_on_an_unknown_note_is_one_line(backed_up, tmp_path):
    assert "no note 9999" in one_line_error(run_cli("info", "9999", "--archive", backed_up.root), 25)
    one_line_error(run_cli("info", "2021/01/01/PTT-20210101-WA0099.opus", "--archive", backed_up.root), 25)

    archive = backed_up.copy(tmp_path)
    stray = archive / "2021" / "stray.opus"
    shutil.copy(FIXTURES / "voice-1s.opus", stray)
    assert "catalog rebuild" in one_line_error(run_cli("info", stray), 25)
    assert "catalog rebuild" not in one_line_error(run_cli("info", archive / ".adbvoice" / "lock"), 25)
    elsewhere = tmp_path / "voice-1s.opus"
    shutil.copy(FIXTURES / "voice-1s.opus", elsewhere)
    assert "not inside an adbvoice archive" in one_line_error(run_cli("info", elsewhere), 24)


# --- catalog rebuild ---------------------------------------------------------------------------


def test_rebuild_keeps_every_field_the_old_catalog_knew_and_keeps_the_old_catalog(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    old_bytes = (archive / ".adbvoice" / "catalog.sqlite").read_bytes()
    stats_before = json.loads(run_cli("stats", archive, "--json").stdout)

    result = run_cli("catalog", "rebuild", archive)

    assert result.exit_code == 0, result.stderr
    assert f"from {len(backed_up.notes)} note files" in result.stdout
    assert ls_json(archive) == backed_up.notes
    assert json.loads(run_cli("stats", archive, "--json").stdout) == stats_before
    kept = [p for p in (archive / ".adbvoice").iterdir() if p.name.startswith("catalog-before-rebuild-")]
    assert [p.read_bytes() for p in kept if p.suffix == ".sqlite"] == [old_bytes]
    assert kept[0].name in result.stdout
    again = backup_again(backed_up, archive)  # the sightings came along: nothing is new
    assert again.exit_code == 0 and again.stdout.startswith("no new voice notes"), again.stdout


def test_rebuild_after_deleting_the_catalog_gives_the_same_notes_hashes_and_metadata(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    (archive / ".adbvoice" / "catalog.sqlite").unlink()
    files = archived_files(archive)

    result = run_cli("catalog", "rebuild", archive, "--json")

    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["backup"] is None and report["files"] == len(backed_up.notes)
    rebuilt = ls_json(archive)
    assert [{k: n[k] for k in FROM_THE_FILES} for n in rebuilt] == [{k: n[k] for k in FROM_THE_FILES} for n in backed_up.notes]
    assert all(n["phone_path"] is None and n["device_serial"] is None for n in rebuilt)

    first = backup_again(backed_up, archive)  # recognised by content: pulled to hash, never stored twice
    assert first.exit_code == 0 and first.stdout.startswith("no new voice notes"), first.stdout
    assert archived_files(archive) == files
    assert backup_again(backed_up, archive).stdout.startswith("no new voice notes")


def test_rebuild_handles_moved_deleted_changed_and_uncatalogued_files(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    voice = [n for n in backed_up.notes if n["source"] == "voice" and not n["audio_error"]]
    moved, deleted, changed, swap_a, swap_b = voice[:5]
    (archive / "keep").mkdir()
    os.rename(archive / moved["archive_path"], archive / "keep" / "favourite.opus")
    os.rename(archive / swap_a["archive_path"], archive / "swapping")
    os.rename(archive / swap_b["archive_path"], archive / swap_a["archive_path"])
    os.rename(archive / "swapping", archive / swap_b["archive_path"])
    (archive / deleted["archive_path"]).unlink()
    shutil.copy(FIXTURES / "voice-4s.opus", archive / changed["archive_path"])
    (archive / "2023/01/02").mkdir(parents=True)
    shutil.copy(FIXTURES / "voice-8s.opus", archive / "2023/01/02/PTT-20230102-WA0007.opus")
    (archive / "notes.txt").write_text("what this folder is\n")
    os.symlink(archive / "keep", archive / "shortcut")

    result = run_cli("catalog", "rebuild", archive, "--json")

    report = json.loads(result.stdout)
    assert result.exit_code == 3
    assert report["missing"] == [deleted["archive_path"]] and report["changed"] == [changed["archive_path"]]
    assert sorted(report["uncatalogued"]) == sorted(["2023/01/02/PTT-20230102-WA0007.opus", changed["archive_path"]])
    assert sorted(report["skipped"]) == ["notes.txt (not an audio file)", "shortcut (a symbolic link, not followed)"]
    rows = {n["archive_path"]: n for n in ls_json(archive)}
    assert rows["keep/favourite.opus"]["phone_path"] == moved["phone_path"]
    assert rows["keep/favourite.opus"]["id"] == moved["id"]
    assert rows[swap_a["archive_path"]]["phone_path"] == swap_b["phone_path"]  # facts follow the bytes
    assert rows[swap_b["archive_path"]]["phone_path"] == swap_a["phone_path"]
    assert rows[changed["archive_path"]]["phone_path"] is None
    assert rows[changed["archive_path"]]["sha256"] == hashlib.sha256((FIXTURES / "voice-4s.opus").read_bytes()).hexdigest()
    new = rows["2023/01/02/PTT-20230102-WA0007.opus"]
    assert new["recorded_on"] == "2023-01-02" and new["codec"] == "opus" and 7 < new["duration_s"] < 9

    again = backup_again(backed_up, archive)  # the phone still has both: both come back
    recopied = {n["phone_path"] for n in json.loads(run_cli("ls", archive, "--json").stdout)}
    assert again.stdout.startswith("2 new voice notes"), again.stdout
    assert {deleted["phone_path"], changed["phone_path"]} <= recopied


def test_a_note_file_that_cannot_be_read_is_reported_not_a_crash(backed_up, tmp_path, monkeypatch):
    archive = backed_up.copy(tmp_path)
    victim = backed_up.notes[0]["archive_path"]
    real_hash = rebuild.file_sha256

    def refuse(path):
        if path == archive / victim:
            raise PermissionError(13, "Permission denied")
        return real_hash(path)

    monkeypatch.setattr(rebuild, "file_sha256", refuse)
    result = run_cli("catalog", "rebuild", archive)

    assert result.exit_code == 3
    assert f"{victim}: cannot be read (Permission denied); not catalogued" in result.stderr
    assert "its file is gone" not in result.stderr
    assert paths(ls_json(archive)) == paths(backed_up.notes[1:])


def test_rebuild_over_a_corrupt_catalog_keeps_its_bytes_and_rebuilds_from_the_files(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    catalog = archive / ".adbvoice" / "catalog.sqlite"
    catalog.write_bytes(b"this is not SQLite, a disk error ate it " * 100)
    for reader in (["ls", archive], ["stats", archive], ["info", "1", "--archive", archive],
                   ["export", "--html", archive, "-o", tmp_path / "page.html"]):
        assert "unreadable" in one_line_error(run_cli(*reader), 24)

    result = run_cli("catalog", "rebuild", archive)

    assert result.exit_code == 3 and "the old catalog is damaged (notes: file is not a database)" in result.stderr
    assert paths(ls_json(archive)) == paths(backed_up.notes)
    backups = list((archive / ".adbvoice").glob("catalog-before-rebuild-*.sqlite"))
    assert [b.read_bytes() for b in backups] == [b"this is not SQLite, a disk error ate it " * 100]


def test_rebuild_reads_and_keeps_what_a_crash_left_in_the_write_ahead_log(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    crashed = tmp_path / "crashed"
    live = Catalog.open(archive / ".adbvoice" / "catalog.sqlite")
    try:
        live.start_run(device_serial="EMU0001", device_model="Pixel 7", transport="tcp")
        shutil.copytree(archive, crashed)  # as a crash leaves it: the last run only in the log
    finally:
        live.close()
    log = crashed / ".adbvoice" / "catalog.sqlite-wal"
    assert log.stat().st_size > 0

    result = run_cli("catalog", "rebuild", crashed)

    assert result.exit_code == 0, result.stderr
    assert not log.exists()  # replayed into the new catalog, it would corrupt it
    assert json.loads(run_cli("stats", crashed, "--json").stdout)["runs"]["count"] == 3
    assert paths(ls_json(crashed)) == paths(backed_up.notes)
    kept = next((crashed / ".adbvoice").glob("catalog-before-rebuild-*.sqlite"))
    assert Path(f"{kept}-wal").stat().st_size > 0 and len(Catalog.salvage(kept).runs) == 3


def test_a_catalog_damaged_part_way_reads_as_unreadable_not_as_a_crash(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    catalog = archive / ".adbvoice" / "catalog.sqlite"
    with open(catalog, "r+b") as damaged:
        damaged.truncate(catalog.stat().st_size // 2)
    assert "malformed" in one_line_error(run_cli("ls", archive), 24)
    assert run_cli("catalog", "rebuild", archive).exit_code == 3
    assert paths(ls_json(archive)) == paths(backed_up.notes)


def test_rebuild_waits_for_no_one_while_a_backup_holds_the_archive(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    with Archive(archive).lock():
        assert "in use by adbvoice pid" in one_line_error(run_cli("catalog", "rebuild", archive), 22)
    assert not list((archive / ".adbvoice").glob("catalog-before-rebuild-*"))


@pytest.mark.parametrize(
    "command",
    [["ls"], ["stats"], ["export", "--html"], ["catalog", "rebuild"]],
)
def test_a_folder_that_is_not_an_archive_is_one_line_and_exit_code_24(tmp_path, command):
    folder = tmp_path / "Music"
    folder.mkdir()
    shutil.copy(FIXTURES / "voice-1s.opus", folder)
    assert "not an adbvoice archive" in one_line_error(run_cli(*command, folder), 24)
    assert sorted(p.name for p in folder.iterdir()) == ["voice-1s.opus"]
