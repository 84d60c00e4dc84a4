"""`verify`: re-read the archive and compare it with its catalog, changing nothing.

What happens to files at rest: a note goes missing (deleted or moved by hand, a disk that
lost it), a note changes (bit rot, truncation, an editor that saved over it), and files
appear that the catalog does not know (copied in by hand, or a complete note whose backup
was cut off between publishing it and cataloguing it — the next backup adopts those).
The full check reads every note and compares its SHA-256; `quick` compares presence and
size only, so it reads no note and cannot see a flipped bit.

Nothing is written: the catalog is opened read-only and the notes are only read.
"""

from __future__ import annotations

import hashlib
import os
import stat as statmod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from adbvoice.archive.catalog import NoteRow, reading
from adbvoice.archive.folder import Archive
from adbvoice.display import human_bytes
from adbvoice.events import Event

_BLOCK = 1 << 20


@dataclass(frozen=True)
class Changed:
    """A catalogued note whose file is not what the catalog recorded."""

    archive_path: str
    reason: str  # "size", "content", "not a regular file" or "unreadable: <why>"
    expected_size: int
    size: int | None
    expected_sha256: str
    sha256: str | None  # None when the file was not read (--quick, or unreadable)


@dataclass
class VerifyReport:
    quick: bool
    checked: int = 0  # catalogued notes looked at
    bytes_read: int = 0
    missing: list[str] = field(default_factory=list)  # catalogued, but no file
    changed: list[Changed] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # files the catalog does not know

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.changed) + len(self.unknown)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem_counts(self) -> str:
        """`1 missing, 2 changed, 1 not in the catalog` (only the kinds found)."""
        parts = [(len(self.missing), "missing"), (len(self.changed), "changed"), (len(self.unknown), "not in the catalog")]
        return ", ".join(f"{count:,} {what}" for count, what in parts if count)

    def summary_line(self) -> str:
        how = "sizes only" if self.quick else f"{human_bytes(self.bytes_read)} read"
        head = f"checked {self.checked:,} note{'s' if self.checked != 1 else ''} ({how})"
        return f"{head}: {self.problem_counts()}" if self.problems else f"{head}: all match the catalog"

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(ok=self.ok, problems=self.problems, summary=self.summary_line())
        return data


def verify_archive(root: Path, *, quick: bool = False, on_event: Callable[[Event], None] = lambda _event: None) -> VerifyReport:
    """Compare every catalogued note with its file, and every file with the catalog.

    Events: one "planned" (notes and their bytes), "bytes" as notes are read (with
    `quick`, each note's size once checked), one "note" per note. NotAnArchiveError when
    `root` has no readable catalog.
    """
    archive = Archive.open(root, create=False)
    with reading(archive.catalog_path) as catalog:
        notes = list(catalog.notes())
    report = VerifyReport(quick=quick, checked=len(notes))
    on_event(Event("planned", f"{len(notes)} notes to check", files=len(notes), bytes=sum(n.size for n in notes)))
    for note in notes:
        _check(archive, note, report, on_event)
        if quick:  # nothing is read: progress counts the sizes checked
            on_event(Event("bytes", bytes=note.size))
        on_event(Event("note", note.archive_path, files=1, bytes=note.size))
    known = {n.archive_path for n in notes}
    report.unknown = sorted(path for path in map(PurePosixPath.as_posix, archive.files()) if path not in known)
    report.missing.sort()
    report.changed.sort(key=lambda c: c.archive_path)
    return report


def _check(archive: Archive, note: NoteRow, report: VerifyReport, on_event: Callable[[Event], None]) -> None:
    path = archive.path_of(PurePosixPath(note.archive_path))

    def changed(reason: str, size: int | None = None, sha256: str | None = None) -> None:
        report.changed.append(Changed(note.archive_path, reason, note.size, size, note.sha256, sha256))

    try:
        st = path.lstat()
    except FileNotFoundError:
        report.missing.append(note.archive_path)
        return
    except OSError as exc:
        changed(f"unreadable: {exc.strerror or exc}")
        return
    if not statmod.S_ISREG(st.st_mode):
        changed("not a regular file")
    elif st.st_size != note.size:
        changed("size", st.st_size)
    elif not report.quick:
        try:
            digest = _sha256(path, report, on_event)
        except OSError as exc:
            changed(f"unreadable: {exc.strerror or exc}", st.st_size)
            return
        if digest != note.sha256:
            changed("content", st.st_size, digest)


def _sha256(path: Path, report: VerifyReport, on_event: Callable[[Event], None]) -> str:
    digest = hashlib.sha256()
    # O_NOFOLLOW: lstat said "regular file"; never follow a link swapped in since.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            report.bytes_read += len(block)
            on_event(Event("bytes", bytes=len(block)))
    return digest.hexdigest()
