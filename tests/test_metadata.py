"""The catalog's audio facts come from `read_audio_info`: right for real notes, honest for broken ones."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import mutagen.oggopus
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.ogg import OggPage

from adbvoice.archive.metadata import AudioInfo, read_audio_info

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
# ffprobe's codec names -> ours
CODECS = {"opus": "opus", "aac": "aac", "mp3": "mp3", "pcm_s16le": "pcm", "amr_nb": "amr"}
BROKEN = ["empty.opus", "not-audio.opus", "garbage.m4a", "truncated.opus"]


def _ogg_page_starts(data: bytes) -> list[int]:
    """Where each whole page starts, and where the last whole page ends."""
    starts, offset = [0], 0
    while offset + 27 <= len(data):
        count = data[offset + 26]
        end = offset + 27 + count + sum(data[offset + 27 : offset + 27 + count])
        if end > len(data):
            break
        starts.append(end)
        offset = end
    return starts


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if not n.endswith(".amr")))
def test_a_real_file_reads_as_ffprobe_sees_it(name: str) -> None:
    expected = EXPECTED[name]
    info = read_audio_info(FIXTURES / name)

    assert info.readable, info.error
    assert info.codec == CODECS[expected["codec"]]
    assert info.duration_s == pytest.approx(expected["duration"], abs=0.05)
    assert info.channels == expected["channels"]
    assert info.sample_rate == expected.get("opus_input_sample_rate", expected["sample_rate"])
    assert info.bitrate and info.bitrate > 0


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("voice-")))
def test_a_whatsapp_note_reports_its_16khz_input_and_not_a_tripled_duration(name: str) -> None:
    # Granules count 48 kHz samples; dividing by the 16 kHz input rate gives 3x (tinytag #81).
    info = read_audio_info(FIXTURES / name)

    assert info.sample_rate == 16000
    assert info.duration_s < EXPECTED[name]["duration"] * 1.1
    assert 12_000 <= info.bitrate <= 32_000  # WhatsApp-like low bitrate, measured from the size
    assert info.vendor and "libopus" in info.vendor


def test_an_amr_file_is_named_and_flagged_because_mutagen_cannot_read_it() -> None:
    info = read_audio_info(FIXTURES / "audio.amr")

    assert not info.readable
    assert info.codec == "amr"
    assert "AMR" in info.error and "mutagen" in info.error
    assert info.duration_s is None


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_fixture_gives_an_error_value_not_an_exception(name: str) -> None:
    info = read_audio_info(FIXTURES / name)

    assert isinstance(info, AudioInfo)
    assert not info.readable
    assert info.error


@pytest.mark.parametrize(
    ("name", "reason"),
    [("empty.opus", "empty file"), ("not-audio.opus", "not an audio file"), ("garbage.m4a", "not an audio file")],
)
def test_the_error_says_what_is_wrong(name: str, reason: str) -> None:
    assert read_audio_info(FIXTURES / name).error == reason


def test_a_note_cut_mid_stream_is_flagged_yet_keeps_the_duration_of_what_arrived() -> None:
    data = (FIXTURES / "truncated.opus").read_bytes()
    assert _ogg_page_starts(data)[-1] < len(data)  # the fixture really ends inside a page
    info = read_audio_info(FIXTURES / "truncated.opus")

    assert info.error == "truncated Ogg stream: the last page is incomplete"
    assert info.codec == "opus"
    assert 0 < info.duration_s < read_audio_info(FIXTURES / "voice-12s.opus").duration_s


def test_cutting_a_note_anywhere_never_raises_and_only_whole_pages_read_clean(tmp_path: Path) -> None:
    data = (FIXTURES / "voice-4s.opus").read_bytes()
    starts = set(_ogg_page_starts(data))
    first_audio_page = sorted(starts)[2]  # after the OpusHead and OpusTags pages
    cut = tmp_path / "cut.opus"
    clean = []
    for length in sorted(set(range(0, len(data), 7)) | starts):
        cut.write_bytes(data[:length])
        info = read_audio_info(cut)
        if length in starts and length > first_audio_page:
            assert info.readable and info.duration_s > 0, (length, info)
            clean.append(info.duration_s)
        else:
            assert not info.readable, (length, info)
    assert clean == sorted(clean) and len(clean) >= 4  # each whole page adds audio
    cut.write_bytes(data[:first_audio_page])
    assert read_audio_info(cut).error == "no audio data"


def test_a_whole_note_without_the_end_of_stream_flag_still_reads_clean(tmp_path: Path) -> None:
    # AOSP's OggWriter never sets the flag (chenxiaolong/BCR#922), so its absence is no fault.
    data = (FIXTURES / "voice-4s.opus").read_bytes()
    last = _ogg_page_starts(data)[-2]
    page = OggPage(io.BytesIO(data[last:]))
    page.last = False
    note = tmp_path / "no-eos.opus"
    note.write_bytes(data[:last] + page.write())

    info = read_audio_info(note)

    assert info.readable
    assert info.duration_s == pytest.approx(EXPECTED["voice-4s.opus"]["duration"], abs=0.05)


def test_a_note_with_a_multi_megabyte_tag_block_reads_fine(tmp_path: Path) -> None:
    note = tmp_path / "huge-tags.opus"
    shutil.copyfile(FIXTURES / "voice-8s.opus", note)
    tagged = mutagen.oggopus.OggOpus(note)
    tagged["comment"] = "x" * 6_000_000
    tagged.save()
    assert note.stat().st_size > 6_000_000

    info = read_audio_info(note)

    assert info.readable
    assert info.duration_s == pytest.approx(EXPECTED["voice-8s.opus"]["duration"], abs=0.05)
    assert info.sample_rate == 16000


def test_a_huge_tag_block_cut_short_is_flagged_not_raised(tmp_path: Path) -> None:
    note = tmp_path / "huge-tags.opus"
    shutil.copyfile(FIXTURES / "voice-8s.opus", note)
    tagged = mutagen.oggopus.OggOpus(note)
    tagged["comment"] = "x" * 3_000_000
    tagged.save()
    with open(note, "r+b") as f:
        f.truncate(1_500_000)

    assert read_audio_info(note).error


def test_reading_never_changes_a_files_bytes_or_mtime(tmp_path: Path) -> None:
    for source in sorted(FIXTURES.iterdir()):
        copy = tmp_path / source.name
        shutil.copyfile(source, copy)
        os.utime(copy, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
        before = hashlib.sha256(copy.read_bytes()).hexdigest()

        read_audio_info(copy)

        assert hashlib.sha256(copy.read_bytes()).hexdigest() == before, source.name
        assert copy.stat().st_mtime_ns == 1_600_000_000_123_456_789, source.name


def test_a_missing_file_or_a_folder_is_an_error_value(tmp_path: Path) -> None:
    assert read_audio_info(tmp_path / "gone.opus").error.startswith("cannot read file")
    assert read_audio_info(tmp_path).error.startswith("cannot read file")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offset=st.integers(min_value=0, max_value=10_334),
    junk=st.binary(min_size=1, max_size=64),
    suffix=st.sampled_from([".opus", ".m4a", ".mp3", ".aac", ".wav"]),
)
def test_damaged_bytes_under_any_audio_name_never_raise(tmp_path: Path, offset: int, junk: bytes, suffix: str) -> None:
    data = bytearray((FIXTURES / "voice-4s.opus").read_bytes())
    data[offset : offset + len(junk)] = junk
    note = tmp_path / f"damaged{suffix}"
    note.write_bytes(bytes(data))

    info = read_audio_info(note)

    assert isinstance(info, AudioInfo)



def test_a_note_claiming_an_absurd_length_is_flagged_and_its_duration_not_believed(tmp_path: Path) -> None:
    with open(FIXTURES / "voice-4s.opus", "rb") as handle:
        pages = []
        while True:
            try:
                pages.append(OggPage(handle))
            except EOFError:
                break
    pages[-1].position = 2**63 - 1  # a last granule that would mean 6 million years
    liar = tmp_path / "liar.opus"
    liar.write_bytes(b"".join(page.write() for page in pages))

    info = read_audio_info(liar)

    assert info.duration_s is None
    assert info.error is not None and info.error.startswith("implausible duration")
    assert info.codec == "opus"
