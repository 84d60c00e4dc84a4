"""`catalog rebuild`: a new catalog from the archive's files, keeping what only the old one knew.

What the files tell always comes from the files: the bytes (SHA-256, size), the audio
(mutagen), the day (from the name, else the dated folders, else the file time) and the
phone's mtime (every note keeps it as its file time). What only the old catalog knows —
where on which phone a note was seen, its source, when and by which run it was archived,
and the runs themselves — is carried over for each file whose bytes the old catalog
recorded, as far as the old catalog can still be read.

Order of writes, so that `catalog.sqlite` is a whole catalog (old or new) at every moment:
the new catalog is built in `tmp/`; the old one is copied to a dated backup, which is
synced; then the new one takes its name with rename(2). The old catalog is never deleted.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path, PurePosixPath

from adbvoice import errors
from adbvoice.archive.catalog import Catalog, NoteRow, Salvage, SightingRow, utc_now
from adbvoice.archive.folder import DIR_MODE, FILE_MODE, Archive, file_sha256, fsync_dir
from adbvoice.archive.layout import PRIVATE_DIR
from adbvoice.archive.metadata import AudioInfo, read_audio_info
from adbvoice.whatsapp import date_from_name, is_audio_name

# The default layout's folders, YYYY/MM/DD/<name>: the day when the name has none.
_DATED = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/[^/]+$")
_BACKUP_SUFFIXES = ("", "-wal")  # a catalog's committed state: the file and its write-ahead log


@dataclass(frozen=True)
class FoundFile:
    """One note file as the archive holds it now."""

    relpath: str
    sha256: str
    size: int
    mtime: int
    audio: AudioInfo


@dataclass
class RebuildReport:
    files: int = 0
    carried: int = 0  # notes whose phone facts came from the old catalog
    uncatalogued: list[str] = field(default_factory=list)  # files the old catalog did not know
    missing: list[str] = field(default_factory=list)  # the old catalog's notes whose file is gone
    changed: list[str] = field(default_factory=list)  # files whose bytes are not those archived
    skipped: list[str] = field(default_factory=list)  # not notes: other files, symbolic links
    unreadable: list[str] = field(default_factory=list)  # note files that could not be read at all
    sightings: int = 0
    runs: int = 0
    backup: str | None = None  # the old catalog's copy, relative to the archive
    old_problem: str | None = None  # why the old catalog could not be read whole

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.old_problem:
            found.append(
                f"the old catalog is damaged ({self.old_problem}); what it could not give is unknown "
                f"for {len(self.uncatalogued):,} notes (where on the phone, which device)"
            )
        found += [
            f"{path}: in the old catalog, but its file is gone; left out (the next backup copies it "
            "again if the phone still has it)"
            for path in self.missing
        ]
        found += [
            f"{path}: its bytes are not the ones archived (the SHA-256 differs); catalogued as it is now, "
            "without where it came from"
            for path in self.changed
        ]
        found += [f"{problem}; not catalogued" for problem in self.unreadable]
        return found

    @property
    def exit_code(self) -> int:
        return errors.EXIT_WARNINGS if self.warnings else errors.EXIT_OK

    def summary_line(self) -> str:
        line = f"rebuilt the catalog from {self.files:,} note file{'s' if self.files != 1 else ''}"
        if self.backup is None:
            return line + " (there was no old catalog to keep phone paths and devices from)"
        return (
            f"{line}: {self.carried:,} known to the old catalog, {len(self.uncatalogued):,} new to it; "
            f"{self.sightings:,} phone sightings and {self.runs:,} runs kept; the old catalog is kept as {self.backup}"
        )

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(warnings=self.warnings, exit_code=self.exit_code, summary=self.summary_line())
        return data


def rebuild_catalog(root: Path) -> RebuildReport:
    """Rebuild `<root>/.adbvoice/catalog.sqlite`; the archive must have its `.adbvoice/`
    folder (the catalog itself may be missing or damaged)."""
    archive = Archive(root.expanduser().absolute())
    if not archive.private.is_dir():
        raise errors.NotAnArchiveError(
            f"{archive.root} is not an adbvoice archive (no {PRIVATE_DIR}/ folder); if it holds notes "
            f"copied from one, create {PRIVATE_DIR}/ in it and rebuild again"
        )
    archive.check()
    report = RebuildReport()
    with archive.lock():
        archive.tmp.mkdir(mode=DIR_MODE, exist_ok=True)
        archive.sweep_tmp()
        old = Catalog.salvage(archive.catalog_path) if archive.catalog_path.exists() else Salvage()
        report.old_problem = old.problem
        found = _scan(archive, report)
        notes, sightings = _merge(found, old, report, archive)
        fresh = archive.tmp / f"catalog-{secrets.token_hex(4)}.sqlite"
        try:
            catalog = Catalog.open(fresh)
            try:
                kept = {note.id for note in notes}
                catalog.restore(old.runs, notes, sightings, [p for p in old.pruned if p.note_id in kept],
                                old.reported, _provable_listings(old, sightings))
                contents = {note.sha256 for note in notes}
                catalog.restore_transcripts(t for t in old.transcripts if t.sha256 in contents)
            finally:
                catalog.close()
            if archive.catalog_path.exists():
                report.backup = _keep_old(archive)
            os.replace(fresh, archive.catalog_path)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise errors.DiskFullError("the archive's disk is full (rebuilding the catalog); the old one is unchanged") from exc
            raise errors.ArchiveNotWritableError(f"cannot write the new catalog: {exc.strerror or exc}") from exc
        finally:
            for leftover in archive.tmp.glob(f"{fresh.name}*"):
                leftover.unlink()
        fsync_dir(archive.private)
    return report


def _scan(archive: Archive, report: RebuildReport) -> list[FoundFile]:
    """Every audio-named regular file outside `.adbvoice/`, hashed and read; symbolic
    links and other files are reported, never followed or catalogued."""
    found = []
    for relative in archive.files():
        path, relpath = archive.path_of(relative), relative.as_posix()
        if path.is_symlink():
            report.skipped.append(f"{relpath} (a symbolic link, not followed)")
        elif not is_audio_name(relative.name) or not path.is_file():
            report.skipped.append(f"{relpath} (not an audio file)")
        else:
            try:
                status = path.stat()
                sha256 = file_sha256(path)
            except OSError as exc:
                report.unreadable.append(f"{relpath}: cannot be read ({exc.strerror or exc})")
                continue
            found.append(FoundFile(relpath, sha256, status.st_size, int(status.st_mtime), read_audio_info(path)))
    report.files = len(found)
    return found


def _merge(
    found: list[FoundFile], old: Salvage, report: RebuildReport, archive: Archive
) -> tuple[list[NoteRow], list[SightingRow]]:
    """The new notes and sightings: each file matched to the old note at its path with the
    same bytes, else to an old note with the same bytes elsewhere (moved inside the archive)."""
    by_path = {n.archive_path: n for n in old.notes}
    by_sha: dict[str, list[NoteRow]] = defaultdict(list)
    for note in old.notes:
        by_sha[note.sha256].append(note)
    matched: dict[str, NoteRow] = {}
    used: set[int] = set()
    for file in found:
        before = by_path.get(file.relpath)
        if before is not None and before.sha256 == file.sha256:
            matched[file.relpath] = before
            used.add(before.id)
    for file in found:
        if file.relpath not in matched:
            spare = next((n for n in by_sha.get(file.sha256, []) if n.id not in used), None)
            if spare is not None:
                used.add(spare.id)
                matched[file.relpath] = spare
    report.changed = [f.relpath for f in found if f.relpath not in matched and f.relpath in by_path]
    run_ids = {run.id for run in old.runs}
    now = utc_now()
    notes = [_note_row(file, matched.get(file.relpath), run_ids, now) for file in found]
    kept_ids = {n.id for n in matched.values()}
    sightings = [s for s in old.sightings if s.note_id in kept_ids]
    report.carried = len(matched)
    report.uncatalogued = [f.relpath for f in found if f.relpath not in matched]
    report.missing = sorted(  # a changed or unreadable file's old note is not missing
        n.archive_path for n in old.notes
        if n.id not in used and not os.path.lexists(archive.path_of(PurePosixPath(n.archive_path)))
    )
    report.sightings, report.runs = len(sightings), len(old.runs)
    return notes, sightings


def _provable_listings(old: Salvage, sightings: list[SightingRow]) -> dict[str, str]:
    """The phones' listing fingerprints that still hold: a fingerprint says "the archive
    holds everything this listing showed", true after a rebuild only when every sighting
    of that phone was carried over (none lost with a note, none unread in a damaged catalog).
    Kept, the next backup of an unchanged phone costs two round trips, as before the rebuild."""
    if old.problem:
        return {}
    kept = set(sightings)
    lost = {seen.device_serial for seen in old.sightings if seen not in kept}
    return {serial: value for serial, value in old.listings.items() if serial not in lost}


def _note_row(file: FoundFile, before: NoteRow | None, run_ids: set[int], now: str) -> NoteRow:
    from_files = dict(archive_path=file.relpath, sha256=file.sha256, size=file.size, **file.audio.catalog_columns())
    if before is not None:
        return replace(before, **from_files, run_id=before.run_id if before.run_id in run_ids else None)
    return NoteRow(
        **from_files, recorded_on=_day(file).isoformat(), phone_mtime=file.mtime, source=None,
        device_serial=None, device_model=None, phone_path=None, phone_path_raw=None, archived_at=now,
    )


def _day(file: FoundFile) -> date:
    """As the backup chose it: the name's date, else the dated folders it sits in (the
    backup put it there), else its file time (the phone's mtime) in local time."""
    named = date_from_name(PurePosixPath(file.relpath).name)
    if named:
        return named
    folders = _DATED.search(file.relpath)
    if folders:
        try:
            return date(int(folders[1]), int(folders[2]), int(folders[3]))
        except ValueError:
            pass
    return datetime.fromtimestamp(file.mtime).date()


def _keep_old(archive: Archive) -> str:
    """Copy the old catalog (and its write-ahead log, if a crash left one) to a dated name,
    durably; then drop the live log, which must not be replayed into the new catalog."""
    stamp = utc_now().replace("-", "").replace(":", "").replace("+0000", "Z")
    backup = archive.private / f"catalog-before-rebuild-{stamp}.sqlite"
    number = 1
    while backup.exists():
        number += 1
        backup = archive.private / f"catalog-before-rebuild-{stamp}-{number}.sqlite"
    for suffix in _BACKUP_SUFFIXES:
        source = Path(f"{archive.catalog_path}{suffix}")
        if source.exists() and source.stat().st_size:  # a reader may leave an empty log behind
            _copy_durably(source, Path(f"{backup}{suffix}"))
    fsync_dir(archive.private)
    for suffix in ("-wal", "-shm"):
        Path(f"{archive.catalog_path}{suffix}").unlink(missing_ok=True)
    return backup.relative_to(archive.root).as_posix()


def _copy_durably(source: Path, target: Path) -> None:
    """A whole copy or none: a half-written backup would pass for the old catalog."""
    with open(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            while block := src.read(1 << 20):
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            target.unlink()
            raise
        finally:
            os.close(fd)
