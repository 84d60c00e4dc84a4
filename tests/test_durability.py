"""A disk that does not confirm a write never gets a note into the catalog, whether the
archive syncs note by note (fsync) or its whole filesystem at once (syncfs); and syncfs is
only trusted where it reports errors as fsync does."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from adbvoice.archive import durability
from adbvoice.archive import folder as archive_module
from adbvoice.archive.durability import FileByFile, WholeFilesystem, mount_type, sealer_for
from adbvoice.backup import publish, receive
from adbvoice.emulator import EmulatedPhone
from tests.conftest import PatchedOs, archived_files, is_file, run_cli

MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:45 / /media/anna/My\\040Phone\\040Backups rw,nosuid,nodev shared:7 - fuseblk /dev/sdb1 rw,user_id=0
31 22 0:46 / /home/anna/nas rw - nfs4 nas:/voice rw
32 22 0:47 / /mnt/a rw - tmpfs tmpfs rw
33 22 0:48 / /mnt/a rw - xfs /dev/sdc1 rw
"""


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/home/anna/voice", "ext4"),
        ("/media/anna/My Phone Backups/voice", "fuseblk"),  # spaces are written as \040
        ("/home/anna/nas", "nfs4"),
        ("/home/anna/nasty", "ext4"),  # a longer name is not inside /home/anna/nas
        ("/mnt/a/voice", "xfs"),  # the later mount at the same place hides the earlier
    ],
)
def test_the_archives_filesystem_is_the_innermost_mount_above_it(path, expected):
    assert mount_type(path, MOUNTINFO) == expected


@pytest.mark.parametrize(
    "kernel, filesystem, expected",
    [
        ((6, 1), "ext4", WholeFilesystem),
        ((5, 8), "btrfs", WholeFilesystem),
        ((5, 4), "ext4", FileByFile),  # syncfs did not report write errors before 5.8
        ((6, 1), "fuseblk", FileByFile),  # NTFS or exFAT through FUSE
        ((6, 1), "nfs4", FileByFile),
        ((6, 1), "tmpfs", FileByFile),
        ((0, 0), None, FileByFile),  # not Linux
    ],
)
def test_syncfs_is_trusted_only_where_it_reports_errors_and_commits_everything(
    kernel, filesystem, expected, tmp_path, monkeypatch
):
    monkeypatch.setattr(durability, "_kernel_release", lambda: kernel)
    monkeypatch.setattr(durability, "filesystem_type", lambda _path: filesystem)
    sealer = sealer_for(tmp_path)
    sealer.close()
    assert type(sealer) is expected


def test_a_folder_syncfs_cannot_open_is_synced_note_by_note(tmp_path, monkeypatch):
    monkeypatch.setattr(durability, "_kernel_release", lambda: (6, 1))
    monkeypatch.setattr(durability, "filesystem_type", lambda _path: "ext4")
    assert type(sealer_for(tmp_path / "not-there")) is FileByFile


def refusing(real: Callable[[int], None], times: int, applies: Callable[[int], bool], refused: list[int], after: int):
    """`real`, except that `times` calls that apply, after the first `after`, fail as a
    failing disk's do (each one appended to `refused`)."""
    counting = threading.Lock()
    passed = [0]

    def sync(fd: int) -> None:
        if applies(fd):
            with counting:
                passed[0] += 1
                due = passed[0] > after and len(refused) < times
                if due:
                    refused.append(fd)
            if due:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    return sync


def a_disk_that_fails(monkeypatch, how: str, times: int, after: int = 0) -> list[int]:  # noqa: ANN001
    """The disk says EIO to `times` syncs of received notes, after `after` good ones;
    returns the list of the syncs it refused."""
    refused: list[int] = []
    if how == "note by note":
        monkeypatch.setattr(publish, "sealer_for", lambda _root: FileByFile())
        monkeypatch.setattr(archive_module, "os", PatchedOs(fsync=refusing(os.fsync, times, is_file, refused, after)))
    else:
        sealing = lambda _fd: threading.current_thread().name.startswith("adbvoice-seal")  # noqa: E731
        syncfs = refusing(durability._load_syncfs(), times, sealing, refused, after)
        monkeypatch.setattr(publish, "sealer_for", lambda root: WholeFilesystem(root, syncfs))
    return refused


def catalogued(archive: Path) -> list[dict]:
    return json.loads(run_cli("ls", archive, "--json").stdout)


@pytest.mark.parametrize("how", ["note by note", "whole filesystem"])
def test_notes_the_disk_failed_to_store_once_are_pulled_again_and_archived(how, phone_tree, archive, monkeypatch):
    with EmulatedPhone(phone_tree.root) as phone:
        with monkeypatch.context() as patch:
            refused = a_disk_that_fails(patch, how, times=1)
            result = run_cli("backup", archive, "--tcp", phone.address)
        again = run_cli("backup", archive, "--tcp", phone.address, "--json")

    assert len(refused) == 1
    assert result.exit_code == 3, result.stderr  # only the broken-audio warnings
    assert "failed to store" not in result.stderr
    assert json.loads(again.stdout)["new_notes"] == []  # every note was archived the first time
    assert len(archived_files(archive)) == len(catalogued(archive))


@pytest.mark.parametrize("how", ["note by note", "whole filesystem"])
def test_notes_the_disk_never_stores_are_reported_never_catalogued_and_archived_next_run(
    how, phone_tree, archive, monkeypatch
):
    with EmulatedPhone(phone_tree.root) as phone:
        with monkeypatch.context() as patch:
            a_disk_that_fails(patch, how, times=10_000)
            result = run_cli("backup", archive, "--tcp", phone.address)
        assert result.exit_code == 4, result.stderr  # some notes could not be backed up
        assert "the disk failed to store it" in result.stderr
        assert archived_files(archive) == {} and catalogued(archive) == []
        assert list((archive / ".adbvoice" / "tmp").iterdir()) == []  # no temp file kept either

        healed = run_cli("backup", archive, "--tcp", phone.address)
    assert healed.exit_code == 3, healed.stderr
    notes = {n.sha256 for n in phone_tree.notes if n.is_note and n.kind != "audio"}
    assert {row["sha256"] for row in catalogued(archive)} == notes


def test_a_disk_error_amid_many_groups_never_leaves_a_note_catalogued_unsynced(phone_tree, archive, monkeypatch):
    """Groups of one note, syncs overlapping: the group whose sync fails, and every group
    after it in the batch, is pulled again; the group before it is either published
    already or, if its folders were still to be synced, stops the run as a disk error.
    Either way the catalog lists only whole notes, and the next run completes the archive."""
    with EmulatedPhone(phone_tree.root) as phone:
        with monkeypatch.context() as patch:
            patch.setattr(receive, "GROUP_NOTES", 1)
            refused = a_disk_that_fails(patch, "whole filesystem", times=1, after=2)
            result = run_cli("backup", archive, "--tcp", phone.address)
        rows = catalogued(archive)
        files = archived_files(archive)
        again = run_cli("backup", archive, "--tcp", phone.address)

    assert len(refused) == 1
    assert result.exit_code in (3, 20), result.stderr  # pulled again in the run, or stopped
    if result.exit_code == 20:
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("adbvoice: cannot write the archive (syncing ") and "Input/output error" in last
    assert "Traceback" not in result.stderr
    by_path = {row["archive_path"]: row["sha256"] for row in rows}
    assert all(hashlib.sha256(files[path]).hexdigest() == sha for path, sha in by_path.items())
    assert not list((archive / ".adbvoice" / "tmp").iterdir())
    assert again.exit_code == (0 if result.exit_code == 3 else 3), again.stderr  # 3: broken audio archived now
    notes = {n.sha256 for n in phone_tree.notes if n.is_note and n.kind != "audio"}
    assert {row["sha256"] for row in catalogued(archive)} == notes
