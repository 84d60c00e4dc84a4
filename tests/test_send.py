"""Someone with a recording on the computer sends it through WhatsApp: `send` puts it where
WhatsApp's attach › Audio lists it, verified by the phone, indexed by its media scanner, and
`--share` opens WhatsApp's share sheet for it so only the chat is left to pick."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from adbvoice.emulator import EmulatedPhone
from adbvoice.restore.pushing import TEMP_NAME
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
MUSIC = "Music/adbvoice"


def memo(tmp_path: Path, fixture: str = "audio.m4a", name: str = "memo.m4a") -> Path:
    path = tmp_path / name
    shutil.copyfile(FIXTURES / fixture, path)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if TEMP_NAME.fullmatch(os.fsencode(p.name))]


def test_a_recording_lands_byte_identical_in_music_and_the_media_scanner_is_asked(tmp_path):
    recording = memo(tmp_path)
    phone_dir = tmp_path / "sdcard"
    phone_dir.mkdir()
    with EmulatedPhone(phone_dir) as phone:
        result = run_cli("send", recording, "--tcp", phone.address)
        calls = phone.standins.calls()
        media = phone.standins.media()

    assert result.exit_code == 0, result.stderr
    landed = phone_dir / MUSIC / "memo.m4a"
    assert landed.read_bytes() == recording.read_bytes()
    assert int(landed.stat().st_mtime) == 1_700_000_000
    assert result.stdout.startswith("sent 1 file (") and result.stdout.count("\n") == 1
    assert calls == [["am", "broadcast", "-a", "android.intent.action.MEDIA_SCANNER_SCAN_FILE",
                      "-d", "file:///storage/emulated/0/Music/adbvoice/memo.m4a"]]
    assert list(media) == ["/storage/emulated/0/Music/adbvoice/memo.m4a"]
    assert temp_files(phone_dir) == []


def test_share_opens_whatsapps_share_sheet_with_the_media_stores_uri(tmp_path):
    recording = memo(tmp_path, "voice-4s.opus", "Grandma's song.opus")
    phone_dir = tmp_path / "sdcard"
    phone_dir.mkdir()
    with EmulatedPhone(phone_dir) as phone:
        result = run_cli("send", recording, "--share", "--tcp", phone.address, "--json")
        calls = phone.standins.calls()
        media = phone.standins.media()

    assert result.exit_code == 0, result.stderr
    sent = json.loads(result.stdout)
    assert sent["shared"] == "/sdcard/Music/adbvoice/Grandma's song.opus"
    media_id = media["/storage/emulated/0/Music/adbvoice/Grandma's song.opus"]
    assert calls[-1] == ["am", "start", "-a", "android.intent.action.SEND", "-t", "audio/ogg", "-p", "com.whatsapp",
                         "--eu", "android.intent.extra.STREAM", f"content://media/external/audio/media/{media_id}",
                         "--grant-read-uri-permission"]
    assert ["content", "query", "--uri", "content://media/external/audio/media", "--projection", "_id",
            "--where", "_data='/storage/emulated/0/Music/adbvoice/Grandma''s song.opus'"] in calls


def test_the_same_file_twice_is_already_there_and_another_of_the_same_name_gets_its_own(tmp_path):
    phone_dir = tmp_path / "sdcard"
    phone_dir.mkdir()
    first = memo(tmp_path)
    with EmulatedPhone(phone_dir) as phone:
        assert run_cli("send", first, "--tcp", phone.address).exit_code == 0
        again = run_cli("send", first, "--tcp", phone.address)
        other_dir = tmp_path / "other"
        other_dir.mkdir()
        other = memo(other_dir, "audio.mp3", "memo.m4a")
        second = run_cli("send", other, "--tcp", phone.address)

    assert again.exit_code == 0 and "1 already there" in again.stdout
    assert second.exit_code == 0, second.stderr
    assert (phone_dir / MUSIC / "memo.m4a").read_bytes() == first.read_bytes()
    assert (phone_dir / MUSIC / "memo-2.m4a").read_bytes() == other.read_bytes()


def test_what_is_not_audio_or_not_there_is_refused_with_one_line_and_nothing_is_sent(tmp_path):
    phone_dir = tmp_path / "sdcard"
    phone_dir.mkdir()
    text = tmp_path / "notes.m4a"
    text.write_text("a shopping list, not a recording")
    good = memo(tmp_path)
    with EmulatedPhone(phone_dir) as phone:
        not_audio = run_cli("send", good, text, "--tcp", phone.address)
        missing = run_cli("send", tmp_path / "gone.m4a", "--tcp", phone.address)
        folder = run_cli("send", tmp_path, "--tcp", phone.address)
        two_shared = run_cli("send", good, good, "--share", "--tcp", phone.address)

    assert not_audio.exit_code == 38
    assert not_audio.stderr.startswith(f"adbvoice: {text} is not audio (") and not_audio.stderr.count("\n") == 1
    assert missing.exit_code == 39 and "gone.m4a: cannot send it: No such file or directory" in missing.stderr
    assert folder.exit_code == 39
    assert two_shared.exit_code == 2
    assert not (phone_dir / "Music").exists()


def test_a_phone_without_whatsapp_gets_the_file_and_says_the_share_sheet_did_not_open(tmp_path):
    phone_dir = tmp_path / "sdcard"
    phone_dir.mkdir()
    recording = memo(tmp_path)
    with EmulatedPhone(phone_dir) as phone:
        phone.standins.set_packages([])
        result = run_cli("send", recording, "--share", "--tcp", phone.address)
    assert result.exit_code == 30
    assert "did not open WhatsApp's share sheet (Error: Activity not started" in result.stderr
    assert (phone_dir / MUSIC / "memo.m4a").read_bytes() == recording.read_bytes()


def test_a_full_phone_refuses_the_file_and_keeps_no_part_of_it(tmp_path):
    disk = tmp_path / "phone-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], check=True)
    try:
        big = tmp_path / "long.wav"
        shutil.copyfile(FIXTURES / "audio.wav", big)
        with open(big, "ab") as f:
            f.write(b"\0" * 300_000)  # past the phone's space; a WAV with trailing bytes is still audio
        with EmulatedPhone(disk) as phone:
            result = run_cli("send", big, "--tcp", phone.address)
        assert result.exit_code == 36, result.stderr
        assert "is full (write failed: No space left on device" in result.stderr
        assert not (disk / MUSIC / "long.wav").exists()
        assert temp_files(disk) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
