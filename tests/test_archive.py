"""The archive never shows a half-written note, never replaces one, and is its owner's only."""

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from adbvoice import errors
from adbvoice.archive.folder import HELD_BYTES, WRITEBACK_BYTES, Archive
from adbvoice.backup.publish import same_bytes


def sealed(archive: Archive, content: bytes, mtime: int = 1620036001):
    temp = archive.new_temp()
    temp.write(content)
    temp.store(mtime)
    temp.seal()
    return temp


def never_same(_path: Path) -> bool:
    return False


def test_a_new_archive_and_its_notes_are_private(tmp_path):
    archive = Archive.open(tmp_path / "notes", create=True)
    published = archive.link(sealed(archive, b"voice"), PurePosixPath("2021/05/03/a.opus"), never_same)
    day = archive.root / "2021/05/03"
    assert set(archive.unsynced_folders()) == {archive.root, day.parent.parent, day.parent, day}  # to sync next
    note = archive.path_of(published.relpath)
    assert stat.S_IMODE(note.stat().st_mode) == 0o600
    for folder in (archive.root, archive.root / "2021", archive.root / "2021/05/03", archive.private):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert note.read_bytes() == b"voice" and int(note.stat().st_mtime) == 1620036001
    assert list(archive.tmp.iterdir()) == []


def test_a_stricter_umask_is_respected(tmp_path):
    old = os.umask(0o077)
    try:
        archive = Archive.open(tmp_path / "notes", create=True)
        published = archive.link(sealed(archive, b"x"), PurePosixPath("a.opus"), never_same)
    finally:
        os.umask(old)
    assert stat.S_IMODE(archive.path_of(published.relpath).stat().st_mode) == 0o600


def test_a_taken_name_gets_a_suffix_and_the_old_note_is_untouched(tmp_path):
    archive = Archive.open(tmp_path, create=True)
    first = archive.link(sealed(archive, b"personal"), PurePosixPath("d/PTT-1.opus"), never_same)
    second = archive.link(sealed(archive, b"business"), PurePosixPath("d/PTT-1.opus"), never_same)
    third = archive.link(sealed(archive, b"third"), PurePosixPath("d/PTT-1.opus"), never_same)
    assert [first.relpath.name, second.relpath.name, third.relpath.name] == ["PTT-1.opus", "PTT-1-2.opus", "PTT-1-3.opus"]
    assert archive.path_of(first.relpath).read_bytes() == b"personal"


def test_the_same_bytes_already_at_the_name_are_adopted_not_copied_twice(tmp_path):
    archive = Archive.open(tmp_path / "archive", create=True)
    archive.link(sealed(archive, b"voice"), PurePosixPath("a.opus"), never_same)
    temp = sealed(archive, b"voice")
    again = archive.link(temp, PurePosixPath("a.opus"), lambda existing: same_bytes(existing, temp))
    assert again.adopted and again.relpath == PurePosixPath("a.opus")
    assert sorted(p.name for p in archive.root.iterdir()) == [".adbvoice", "a.opus"]


def test_a_symlink_planted_in_the_archive_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = Archive.open(tmp_path / "archive", create=True)
    (archive.root / "2021").symlink_to(outside)
    with pytest.raises(errors.ArchiveNotWritableError):
        archive.link(sealed(archive, b"x"), PurePosixPath("2021/a.opus"), never_same)
    assert list(outside.iterdir()) == []


def test_leftover_temp_files_are_swept(tmp_path):
    archive = Archive.open(tmp_path, create=True)
    archive.new_temp().write(bytes(HELD_BYTES + 1))  # a long note, cut off while it arrived
    assert archive.sweep_tmp() == 1
    assert list(archive.tmp.iterdir()) == []


@pytest.mark.parametrize("size", [0, 1, HELD_BYTES, HELD_BYTES + 1, 3 * HELD_BYTES + 7, 2 * WRITEBACK_BYTES + 5])
def test_a_note_is_stored_exactly_whether_held_in_memory_or_written_as_it_arrived(size, tmp_path):
    archive = Archive.open(tmp_path, create=True)
    data = os.urandom(size)
    temp = archive.new_temp()
    for start in range(0, size, 64 * 1024):
        temp.write(data[start : start + 64 * 1024])
    temp.store(1_600_000_000)
    temp.seal()
    published = archive.link(temp, PurePosixPath("2020/a.opus"), never_same)
    stored = archive.path_of(published.relpath)
    assert stored.read_bytes() == data and temp.size == size
    assert temp.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.stat().st_mtime == 1_600_000_000 and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert list(archive.tmp.iterdir()) == []


def test_an_archive_that_cannot_be_created_says_so(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(errors.ArchiveNotWritableError) as caught:
        Archive.open(blocker / "archive", create=True)
    assert caught.value.exit_code == 20


def test_a_second_writer_is_told_who_holds_the_lock(tmp_path):
    archive = Archive.open(tmp_path, create=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from adbvoice.archive.folder import Archive\n"
         "a = Archive.open(Path(sys.argv[1]), create=True)\n"
         "with a.lock():\n    print('locked', flush=True); time.sleep(30)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(errors.ArchiveLockedError) as caught:
            with archive.lock():
                pass
        assert f"pid {holder.pid}" in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    with archive.lock():  # the kernel released it when the holder died
        pass
