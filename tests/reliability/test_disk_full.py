"""A full disk stops the backup at once with its message and exit code 21, leaves no partial
file and a sound catalog, and the backup completes once there is room again: on a real
tmpfs that fills up, and with ENOSPC injected at each write the archive makes, whether it
syncs note by note (fsync) or a whole filesystem at a time (syncfs, durability.py)."""

from __future__ import annotations

import errno
import os
import pathlib
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from adbvoice.archive import durability
from adbvoice.archive import folder as archive_module
from adbvoice.archive.catalog import Catalog
from adbvoice.backup import publish, receive
from adbvoice.emulator import EmulatedPhone
from tests.conftest import Outcome, PatchedOs, archived_files, is_file, run_cli
from tests.reliability.conftest import ArchiveState, archive_state, note_hashes

NTH = 3  # the disk fills up on the third write of the kind


def enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fill_up(monkeypatch, archive: Path, seam: str) -> list[int]:
    """Make the NTH call of `seam` fail as a full disk would; returns, once it fired, how
    many notes were published at that moment."""
    calls: list[int] = []
    fired: list[int] = []
    counting = threading.Lock()

    def failing(real: Callable, applies: Callable[..., bool], error: Callable[[], Exception] = enospc) -> Callable:
        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if applies(*args):
                with counting:  # notes are sealed by several threads at once
                    calls.append(1)
                    due = len(calls) == NTH
                if due:
                    fired.append(len(archived_files(archive)))
                    raise error()
            return real(*args, **kwargs)
        return call

    def dated(path, *_args) -> bool:  # noqa: ANN001
        return archive in Path(path).parents and ".adbvoice" not in Path(path).relative_to(archive).parts

    def one_sync_at_a_time(applies: Callable[[], bool]) -> None:
        """Groups of one note, synced a whole filesystem at a time (the seam is syncfs)."""
        syncfs = failing(durability._load_syncfs(), lambda _fd: applies())
        monkeypatch.setattr(receive, "GROUP_NOTES", 1)
        monkeypatch.setattr(publish, "sealer_for", lambda root: durability.WholeFilesystem(root, syncfs))

    def on(thread_prefix: str) -> Callable[[], bool]:
        return lambda: threading.current_thread().name.startswith(thread_prefix)

    if seam in ("syncing a note", "syncing its folder"):  # note by note: fsync
        monkeypatch.setattr(publish, "sealer_for", lambda _root: durability.FileByFile())
    if seam == "writing a note":
        monkeypatch.setattr(archive_module, "os", PatchedOs(write=failing(os.write, lambda *_: True)))
    elif seam == "syncing a note":
        monkeypatch.setattr(archive_module, "os", PatchedOs(fsync=failing(os.fsync, is_file)))
    elif seam == "syncing its folder":
        monkeypatch.setattr(archive_module, "os", PatchedOs(fsync=failing(os.fsync, lambda fd: not is_file(fd))))
    elif seam == "syncing a group's notes":
        one_sync_at_a_time(on("adbvoice-seal"))
    elif seam == "syncing a group's folders":
        one_sync_at_a_time(on("adbvoice-publisher"))
    elif seam == "linking a note":
        monkeypatch.setattr(archive_module, "os", PatchedOs(link=failing(os.link, lambda *_: True)))
    elif seam == "creating a dated folder":
        monkeypatch.setattr(pathlib, "os", PatchedOs(mkdir=failing(os.mkdir, dated)))
    elif seam == "writing the catalog":  # inside the note's transaction, as SQLite reports it
        full = failing(Catalog._sighting, lambda *_: True, lambda: sqlite3.OperationalError("database or disk is full"))
        monkeypatch.setattr(Catalog, "_sighting", full)
    return fired


def assert_stopped_cleanly(outcome: Outcome, cut: ArchiveState) -> None:
    assert outcome.exit_code == 21, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert lines[-1].startswith("adbvoice: the archive's disk is full"), outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert cut.catalog_sound, cut


SEAMS = ["writing a note", "syncing a note", "syncing a group's notes", "linking a note", "syncing its folder",
         "syncing a group's folders", "creating a dated folder", "writing the catalog"]


@pytest.mark.parametrize("seam", SEAMS)
def test_enospc_at_each_write_stops_the_run_at_once(seam, small_tree, archive, monkeypatch, figures):
    wanted, whole = note_hashes(small_tree), {n.sha256 for n in small_tree.notes}
    with EmulatedPhone(small_tree.root) as phone:
        with monkeypatch.context() as patch:
            fired = fill_up(patch, archive, seam)
            outcome = run_cli("backup", archive, "--tcp", phone.address)
        cut = archive_state(archive, whole)
        freed = run_cli("backup", archive, "--tcp", phone.address)
    final = archive_state(archive, whole)
    row = figures.row("Disk full")
    row.after_fault(fired=len(fired) == 1, wanted=wanted, states=(cut, final))
    row.notes["ENOSPC injected"] += 1

    assert len(fired) == 1
    assert_stopped_cleanly(outcome, cut)
    assert sum(cut.copies.values()) - len(cut.unknown) <= fired[0], cut  # nothing was catalogued after it
    if seam != "syncing a group's notes":  # while a group syncs, the one before it may be linked:
        assert sum(cut.copies.values()) == fired[0], cut  # whole, uncatalogued, adopted next run
    assert freed.exit_code == 3, freed.stderr
    assert final.complete(wanted), final


@pytest.mark.parametrize("size", ["96k", "192k", "288k"])
def test_a_real_full_disk_stops_the_run_and_the_backup_completes_after_space_is_freed(
    size, small_tree, small_disk, figures
):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(small_disk)], check=True)
    archive = small_disk / "archive"
    wanted, whole = note_hashes(small_tree), {n.sha256 for n in small_tree.notes}
    with EmulatedPhone(small_tree.root) as phone:
        outcome = run_cli("backup", archive, "--tcp", phone.address)
        cut = archive_state(archive, whole)
        subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
        freed = run_cli("backup", archive, "--tcp", phone.address)
    final = archive_state(archive, whole)
    row = figures.row("Disk full")
    row.after_fault(fired=outcome.exit_code == 21, wanted=wanted, states=(cut, final))
    row.notes["tmpfs filled up"] += 1

    assert_stopped_cleanly(outcome, cut)
    assert sum(cut.copies.values()) < len(wanted)
    assert freed.exit_code == 3, freed.stderr
    assert final.complete(wanted), final
