"""The fake phone the backup is tested against looks and behaves like a WhatsApp user's /sdcard."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from mutagen.ogg import OggPage

from adbvoice.archive.metadata import read_audio_info
from adbvoice.emulator.phonetree import (
    FIXTURES,
    SAMPLES,
    PhoneNote,
    PhoneTree,
    add_notes,
    build_demo_phone,
    build_phone_tree,
)

PLACES = {
    "voice": "/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes",
    "business": "/sdcard/Android/media/com.whatsapp.w4b/WhatsApp Business/Media/WhatsApp Business Voice Notes",
    "legacy": "/sdcard/WhatsApp/Media/WhatsApp Voice Notes",
    "legacy-business": "/sdcard/WhatsApp Business/Media/WhatsApp Business Voice Notes",
    "broken": "/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes",
}
AUDIO = "/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Audio"
NOTE_PATH = re.compile(r"^(?P<place>.+)/(?P<week>\d{6})(?P<sent>/Sent)?/PTT-(?P<day>\d{8})-WA(?P<n>\d{4})\.opus$")
AUDIO_PATH = re.compile(r"^(?P<place>.+)/AUD-(?P<day>\d{8})-WA(?P<n>\d{4})\.(opus|m4a|mp3)$")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> PhoneTree:
    return build_phone_tree(tmp_path_factory.mktemp("phone"))


def _day(note: PhoneNote) -> date:
    match = NOTE_PATH.match(note.phone_path) or AUDIO_PATH.match(note.phone_path)
    assert match, note.phone_path
    return datetime.strptime(match["day"], "%Y%m%d").date()


def _iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}{week:02d}"


def _notes(tree: PhoneTree, *kinds: str) -> list[PhoneNote]:
    return [n for n in tree.notes if n.is_note and (not kinds or n.kind in kinds)]


def _assert_pages_are_whole(path: Path) -> None:
    """Every Ogg page re-encodes to its own bytes, i.e. its CRC and lacing are right."""
    data, offset = path.read_bytes(), 0
    while offset < len(data):
        page = OggPage(io.BytesIO(data[offset:]))
        written = page.write()
        assert data[offset : offset + len(written)] == written, (path.name, offset)
        offset += len(written)


def test_voice_notes_sit_in_iso_weekly_folders_of_each_whatsapp_place(tree: PhoneTree) -> None:
    for kind, place in PLACES.items():
        notes = _notes(tree, kind)
        assert notes, kind
        for note in notes:
            match = NOTE_PATH.match(note.phone_path)
            assert match and match["place"] == place, note.phone_path
            assert match["week"] == _iso_week(_day(note))
    assert any("/Sent/" in n.phone_path for n in _notes(tree, "voice"))


def test_a_note_on_new_years_day_belongs_to_the_previous_iso_year(tree: PhoneTree) -> None:
    edge = [n for n in _notes(tree) if _day(n).month == 1 and _day(n).isocalendar()[0] < _day(n).year]
    assert edge
    assert "/202152/" in edge[0].phone_path


def test_whatsapp_numbers_restart_every_day_in_each_folder(tree: PhoneTree) -> None:
    numbers: dict[tuple[str, date], list[int]] = defaultdict(list)
    for note in _notes(tree):
        match = NOTE_PATH.match(note.phone_path) or AUDIO_PATH.match(note.phone_path)
        numbers[(match["place"], _day(note))].append(int(match["n"]))
    for key, found in numbers.items():
        assert sorted(found) == list(range(len(found))), key


def test_every_note_has_its_own_bytes_as_recorded(tree: PhoneTree) -> None:
    notes = _notes(tree)
    assert len({n.sha256 for n in notes}) == len(notes)
    for note in tree.notes:
        data = note.local_path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == note.sha256
        assert len(data) == note.size
        assert note.phone_path == "/sdcard/" + note.local_path.relative_to(tree.root).as_posix()


def test_mtimes_fall_on_the_date_in_the_name_in_any_time_zone_from_utc_minus_10_to_plus_9(tree: PhoneTree) -> None:
    for note in _notes(tree):
        assert note.local_path.stat().st_mtime == note.mtime
        for hours in (-10, 0, 9):
            zone = timezone(timedelta(hours=hours))
            assert datetime.fromtimestamp(note.mtime, zone).date() == _day(note), (note.phone_path, hours)


def test_a_business_note_shares_a_personal_notes_name_but_not_its_bytes(tree: PhoneTree) -> None:
    def by_name(kind: str) -> dict[str, PhoneNote]:
        return {n.phone_path.removeprefix(PLACES[kind]): n for n in _notes(tree, kind)}

    personal, business = by_name("voice"), by_name("business")
    shared = personal.keys() & business.keys()
    assert shared
    assert all(personal[name].sha256 != business[name].sha256 for name in shared)


def test_nomedia_and_unrelated_files_are_written_but_are_not_notes(tree: PhoneTree) -> None:
    others = [n for n in tree.notes if not n.is_note]
    names = {n.phone_path for n in others}
    for place in set(PLACES.values()):
        assert f"{place}/.nomedia" in names
    for note in _notes(tree, "voice", "business", "legacy", "legacy-business"):
        week_folder = NOTE_PATH.match(note.phone_path)
        assert f"{week_folder['place']}/{week_folder['week']}/.nomedia" in names
    assert f"{AUDIO}/lyrics.txt" in names
    assert any(p.startswith("/sdcard/DCIM/Camera/IMG_") for p in names)
    assert any(p.startswith("/sdcard/Download/") and p.endswith(".opus") for p in names)  # audio, but not WhatsApp's
    assert all(n.kind == "unrelated" for n in others if "WhatsApp" not in n.phone_path)
    assert all(n.local_path.suffix in {".opus", ".m4a", ".mp3"} for n in _notes(tree))


def test_whatsapp_audio_holds_an_opus_an_m4a_and_an_mp3(tree: PhoneTree) -> None:
    audio = _notes(tree, "audio")
    assert sorted(n.local_path.suffix for n in audio) == [".m4a", ".mp3", ".opus"]
    assert all(AUDIO_PATH.match(n.phone_path)["place"] == AUDIO for n in audio)


def test_broken_notes_are_the_broken_fixtures_in_a_weekly_folder(tree: PhoneTree) -> None:
    broken = _notes(tree, "broken")
    fixtures = {hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
                for name in ("truncated.opus", "empty.opus", "not-audio.opus")}
    assert {n.sha256 for n in broken} == fixtures
    assert all(not read_audio_info(n.local_path).readable for n in broken)


def test_every_rebuilt_note_is_a_whole_whatsapp_like_ogg_opus_file(tree: PhoneTree) -> None:
    for note in _notes(tree, "voice", "business", "legacy", "legacy-business"):
        info = read_audio_info(note.local_path)
        assert info.readable, (note.phone_path, info.error)
        assert (info.codec, info.sample_rate, info.channels, info.vendor) == ("opus", 16000, 1, "WhatsApp")
        assert 12_000 <= info.bitrate <= 32_000  # a longer file is a longer note, as on a phone
        _assert_pages_are_whole(note.local_path)


def test_ffprobe_agrees_on_the_duration_of_the_smallest_and_largest_notes(tree: PhoneTree) -> None:
    notes = sorted(_notes(tree, "voice"), key=lambda n: n.size)
    for note in (notes[0], notes[-1]):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(note.local_path)],
            check=True, capture_output=True, text=True,
        )
        ffprobe_duration = float(json.loads(probe.stdout)["format"]["duration"])
        assert read_audio_info(note.local_path).duration_s == pytest.approx(ffprobe_duration, abs=0.05)


def test_sizes_look_like_whatsapp_notes_mostly_kilobytes_a_few_megabytes(tree: PhoneTree) -> None:
    sizes = sorted(n.size for n in _notes(tree, "voice", "business", "legacy", "legacy-business"))
    in_range = [s for s in sizes if 3_000 <= s <= 100_000]
    assert len(in_range) >= 0.9 * len(sizes)
    assert sizes[-1] >= 1_000_000


def test_the_same_seed_builds_the_same_phone_and_another_seed_another(tmp_path: Path) -> None:
    def fingerprint(t: PhoneTree) -> list[tuple[str, str, int]]:
        return sorted((n.phone_path, n.sha256, n.mtime) for n in t.notes)

    first = build_phone_tree(tmp_path / "a", notes=30, seed=7)
    assert fingerprint(first) == fingerprint(build_phone_tree(tmp_path / "b", notes=30, seed=7))
    assert fingerprint(first) != fingerprint(build_phone_tree(tmp_path / "c", notes=30, seed=8))


def test_switching_everything_off_leaves_only_personal_notes_and_their_nomedia(tmp_path: Path) -> None:
    plain = build_phone_tree(tmp_path, notes=12, business=False, legacy=False, audio=False, broken=False,
                             unrelated=False, start=date(2023, 5, 1))
    assert {n.kind for n in plain.notes} == {"voice"}
    assert len(_notes(plain)) == 12
    assert all(n.local_path.name == ".nomedia" for n in plain.notes if not n.is_note)
    assert min(_day(n) for n in _notes(plain)) >= date(2023, 5, 1)


def test_add_notes_records_exactly_the_new_notes_after_the_last_one(tmp_path: Path) -> None:
    phone = build_phone_tree(tmp_path, notes=20)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    last_day = max(datetime.fromtimestamp(n.mtime, timezone.utc).date() for n in phone.notes)

    added = add_notes(phone, 7)

    assert len(added) == 7 and all(n.is_note and n.kind == "voice" for n in added)
    assert all(_day(n) > last_day for n in added)
    new_files = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert {n.local_path for n in added} == {p for p in new_files if p.name != ".nomedia"}
    assert set(added) <= set(phone.notes)
    assert len({n.sha256 for n in _notes(phone)}) == len(_notes(phone))
    for note in added:
        assert NOTE_PATH.match(note.phone_path)["week"] == _iso_week(_day(note))
        assert read_audio_info(note.local_path).readable


def test_a_big_note_has_exactly_the_asked_size_and_reads_fast(tmp_path: Path) -> None:
    size = 30 * 1024 * 1024
    phone = build_phone_tree(tmp_path, notes=3, audio=False, broken=False, unrelated=False, big_file_bytes=size)
    big = max(phone.notes, key=lambda n: n.size)

    assert big.size == size and big.is_note
    info = read_audio_info(big.local_path)
    assert info.readable
    assert info.duration_s == pytest.approx(size * 8 / info.bitrate, rel=0.01)  # about 3.5 hours


def test_two_thousand_notes_keep_every_invariant(tmp_path: Path) -> None:
    phone = build_phone_tree(tmp_path, notes=2000, seed=3)
    notes = _notes(phone, "voice", "business", "legacy", "legacy-business")

    assert len(notes) == 2000
    assert len({n.sha256 for n in _notes(phone)}) == len(_notes(phone))
    assert len({n.phone_path for n in phone.notes}) == len(phone.notes)
    for note in notes:
        assert NOTE_PATH.match(note.phone_path)["week"] == _iso_week(_day(note))
        assert datetime.fromtimestamp(note.mtime, timezone.utc).date() == _day(note)


def test_the_demo_phone_holds_the_packaged_samples_unchanged(tmp_path: Path) -> None:
    samples = sorted(SAMPLES.glob("sample-*.opus"))
    assert 5 <= len(samples) <= 6
    assert sum(p.stat().st_size for p in samples) < 150_000

    demo = build_demo_phone(tmp_path)

    notes = _notes(demo)
    assert {n.sha256 for n in notes} == {hashlib.sha256(p.read_bytes()).hexdigest() for p in samples}
    assert {n.kind for n in notes} == {"voice", "business"}
    for note in notes:
        info = read_audio_info(note.local_path)
        assert info.readable and info.sample_rate == 16000 and 2 < info.duration_s < 8
        assert NOTE_PATH.match(note.phone_path)["week"] == _iso_week(_day(note))
