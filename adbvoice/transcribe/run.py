"""Transcribing an archive: each note without a transcript from this model, one at a time.

Resumable by construction: a note's transcript is written in one transaction when it is
done, and a note is chosen by "this model has no row for these bytes" — so Ctrl-C, a crash
or a full disk leave whole rows only, and the next run goes on where this one stopped.
One transcribing run per archive (its own lock, `.adbvoice/transcribe.lock`): a backup
may run beside it (the catalog takes both writers), a second transcribe may not.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath

from adbvoice import errors
from adbvoice.archive.catalog import Catalog, NoteRow, TranscriptRow, utc_now
from adbvoice.archive.folder import FILE_MODE, Archive
from adbvoice.cancel import CancelToken
from adbvoice.display import human_duration
from adbvoice.speech import engine
from adbvoice.speech.engine import LanguageChoice

LOCK_NAME = "transcribe.lock"


@dataclass(frozen=True)
class TranscribeOptions:
    archive: Path
    model: str = engine.DEFAULT_MODEL
    choice: LanguageChoice = LanguageChoice()
    since: date | None = None  # recorded on or after
    until: date | None = None  # recorded on or before
    threads: int | None = None


@dataclass(frozen=True)
class Progress:
    """Where a run is: notes and seconds of audio done of those planned, and the note in hand."""

    done: int
    planned: int
    seconds_done: float
    seconds_planned: float
    note: str = ""


@dataclass
class TranscribeReport:
    model: str
    transcribed: int = 0
    seconds: float = 0.0  # of audio transcribed
    already: int = 0  # notes this model had already transcribed (or found unreadable)
    skipped: list[str] = field(default_factory=list)  # "path: why", one per note without a transcript
    languages: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return errors.EXIT_WARNINGS if self.skipped else errors.EXIT_OK

    def summary_line(self) -> str:
        words = [
            f"{self.transcribed:,} note{'s' if self.transcribed != 1 else ''} transcribed "
            f"({human_duration(self.seconds)} of audio in {human_duration(self.wall_s)})",
            f"{self.already:,} already done",
            f"{len(self.skipped):,} skipped",
        ]
        if self.languages:
            words.append("languages: " + ", ".join(f"{code} {n}" for code, n in sorted(self.languages.items())))
        return ", ".join(words) + f"; model {self.model}"

    def to_json(self) -> dict:
        return {
            "model": self.model, "transcribed": self.transcribed, "audio_seconds": round(self.seconds, 2),
            "already": self.already, "skipped": self.skipped, "languages": self.languages,
            "wall_seconds": round(self.wall_s, 2), "exit_code": self.exit_code,
        }


def transcribe_archive(
    options: TranscribeOptions,
    on_progress: Callable[[Progress], None],
    cancel: CancelToken,
) -> TranscribeReport:
    """Transcribe what this model has not heard yet; the model is loaded only if there is work."""
    started = time.monotonic()
    archive = Archive.open(options.archive, create=False)
    label = engine.model_label(options.model)
    report = TranscribeReport(label)
    with _lock(archive), _catalog(archive) as catalog:
        chosen = [n for n in catalog.notes() if _in_range(n, options)]
        done = catalog.transcribed(label)
        todo: dict[str, NoteRow] = {}
        for note in chosen:
            if note.sha256 in done:
                report.already += 1
            else:
                todo.setdefault(note.sha256, note)  # the same bytes twice are heard once
        if todo:
            heard_by = engine.load(options.model, threads=options.threads)
            heard_by.check(options.choice)
            _transcribe_each(list(todo.values()), heard_by, options.choice, archive, catalog, report,
                             on_progress, cancel)
    report.wall_s = time.monotonic() - started
    return report


def _transcribe_each(
    notes: list[NoteRow],
    heard_by: engine.Engine,
    choice: LanguageChoice,
    archive: Archive,
    catalog: Catalog,
    report: TranscribeReport,
    on_progress: Callable[[Progress], None],
    cancel: CancelToken,
) -> None:
    planned = sum(n.duration_s or 0.0 for n in notes)
    seconds_done = 0.0
    for index, note in enumerate(notes):
        on_progress(Progress(index, len(notes), seconds_done, planned, note.archive_path))
        cancel.check()
        path = archive.path_of(PurePosixPath(note.archive_path))
        if not path.is_file():  # no row: it is heard once the file is back
            report.skipped.append(f"{note.archive_path}: the file is missing (`adbvoice verify` says more)")
            continue
        try:
            heard = heard_by.hear(path, choice)
        except engine.AudioUnreadable as exc:
            catalog.add_transcript(_row(note, heard_by.label, error=str(exc)))
            report.skipped.append(f"{note.archive_path}: {exc}")
            continue
        cancel.check()
        catalog.add_transcript(_row(note, heard_by.label, heard=heard))
        report.transcribed += 1
        report.seconds += heard.duration_s
        report.languages[heard.language] = report.languages.get(heard.language, 0) + 1
        seconds_done += note.duration_s or 0.0
    on_progress(Progress(len(notes), len(notes), planned, planned))


def _row(note: NoteRow, model: str, *, heard: engine.Heard | None = None, error: str | None = None) -> TranscriptRow:
    return TranscriptRow(
        sha256=note.sha256, model=model,
        language=heard.language if heard else None,
        language_probability=heard.probability if heard else None,
        language_how=heard.how if heard else None,
        text=heard.text if heard else None,
        segments=heard.segments if heard else [],
        duration_s=heard.duration_s if heard else None,
        error=error, transcribed_at=utc_now(),
    )


def _in_range(note: NoteRow, options: TranscribeOptions) -> bool:
    day = note.recorded_on or ""
    if options.since and day < options.since.isoformat():
        return False
    return not (options.until and not (day and day <= options.until.isoformat()))


@contextmanager
def _catalog(archive: Archive) -> Iterator[Catalog]:
    catalog = Catalog.open(archive.catalog_path)
    try:
        yield catalog
    finally:
        catalog.close()


@contextmanager
def _lock(archive: Archive) -> Iterator[None]:
    """One transcribing run per archive. Not the backup's lock: transcribing thousands of
    notes takes hours, and the nightly backup must not wait for it. The kernel drops the
    flock when its holder dies, so a killed run never leaves a stale lock."""
    path = archive.private / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise errors.ArchiveNotWritableError(f"cannot create {path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise errors.TranscribeLockedError(
                f"{archive.root} is being transcribed by {holder}; try again when it finishes"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"adbvoice transcribe pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
