"""Receiving pulled files into the archive: verify, publish, read metadata, catalogue.

A file is published only when every check passed: the byte count equals the size the
phone listed, the phone's lstat right after sending shows the same size and mtime as
before (else the note is still being recorded and is retried), and the SHA-256 we
computed while writing equals the phone's own, where the phone could compute one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adbvoice.archive import Archive, FsyncFailed, TempNote
from adbvoice.cancel import CancelToken
from adbvoice.catalog import Catalog, NoteRow
from adbvoice.metadata import read_audio_info
from adbvoice.phonecmd import PhoneHashes
from adbvoice.plan import Candidate
from adbvoice.report import Event, NewNote, RunReport
from adbvoice.syncclient import RemoteStat


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def text_path(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class Retry:
    """A file to pull again, and what to say if it never arrives whole."""

    candidate: Candidate
    reason: str
    serious: bool  # an error rather than a warning when attempts run out


STILL_CHANGING = "kept changing while being copied (still being recorded?); left for the next run"
NOT_INTACT = "did not arrive intact: its SHA-256 differed from the phone's own at every attempt"


class Copier:
    """The PullSink for one batch of candidates, pulled in order."""

    def __init__(
        self,
        *,
        archive: Archive,
        catalog: Catalog,
        batch: Sequence[Candidate],
        hashes: PhoneHashes | None,
        device_serial: str,
        device_model: str,
        run_id: int,
        report: RunReport,
        on_event: Callable[[Event], None],
        cancel: CancelToken,
    ) -> None:
        self._archive = archive
        self._catalog = catalog
        self._batch = batch
        self._hashes = hashes
        self._serial = device_serial
        self._model = device_model
        self._run_id = run_id
        self._report = report
        self._on_event = on_event
        self._cancel = cancel
        self._index = -1
        self._temp: TempNote | None = None
        self.retries: list[Retry] = []

    @property
    def _current(self) -> Candidate:
        return self._batch[self._index]

    # --- PullSink ----------------------------------------------------------------

    def begin(self, index: int) -> None:
        self._cancel.check()
        self._index = index
        self._temp = self._archive.new_temp()

    def chunk(self, data: bytes) -> None:
        self._temp.write(data)
        self._on_event(Event("bytes", bytes=len(data)))

    def fail(self, message: str) -> None:
        self.abort()
        shown = text_path(self._current.path)
        if "No such file" in message:
            self._report.warnings.append(f"{shown}: vanished from the phone during the backup")
        else:
            self._report.errors.append(f"{shown}: the phone refused to send it ({message})")

    def finish(self, after: RemoteStat) -> None:
        # self._temp stays set until the note is kept or discarded, so that abort() can
        # drop it whatever fails in between (the phone hash stream, the disk, Ctrl-C).
        temp, candidate = self._temp, self._current
        phone_sha = self._hashes.get(self._index) if self._hashes else None
        if not after.exists or (after.size, after.mtime) != (candidate.size, candidate.mtime):
            self.retries.append(Retry(candidate, STILL_CHANGING, serious=False))
        elif temp.size != candidate.size:
            self._report.errors.append(
                f"{text_path(candidate.path)}: the phone lists {candidate.size} bytes but sent {temp.size}; not archived"
            )
        elif phone_sha not in (None, temp.sha256):
            self.retries.append(Retry(candidate, NOT_INTACT, serious=True))
        else:
            with self._cancel.shield():
                self._keep(temp, candidate)
        temp.discard()  # a no-op once kept: the note's bytes live under their final name
        self._temp = None

    def abort(self) -> None:
        """Drop the file in flight (connection lost, disk full, interrupted)."""
        if self._temp is not None:
            self._temp.discard()
            self._temp = None

    # --- publishing --------------------------------------------------------------

    def _keep(self, temp: TempNote, candidate: Candidate) -> None:
        known = self._catalog.note_by_sha(temp.sha256)
        if known is not None:
            temp.discard()
            self._see(candidate, known.id)
            self._report.duplicates += 1
            return
        try:
            temp.seal(candidate.mtime)
        except FsyncFailed as exc:
            self.retries.append(Retry(candidate, f"the disk failed to store it ({exc})", serious=True))
            return
        info = read_audio_info(temp.path)
        published = self._archive.publish(temp, candidate.wanted, lambda existing: self._same(existing, temp))
        row = NoteRow(
            archive_path=published.relpath.as_posix(),
            sha256=temp.sha256,
            size=temp.size,
            recorded_on=candidate.day.isoformat(),
            phone_mtime=candidate.mtime,
            source=candidate.source.kind,
            device_serial=self._serial,
            device_model=self._model,
            phone_path=text_path(candidate.path),
            phone_path_raw=None if _is_utf8(candidate.path) else candidate.path,
            codec=info.codec,
            duration_s=info.duration_s,
            sample_rate=info.sample_rate,
            channels=info.channels,
            bitrate=info.bitrate,
            vendor=info.vendor,
            audio_error=info.error,
            run_id=self._run_id,
        )
        self._catalog.add_note(row, device_serial=self._serial, phone_path=candidate.path, mtime=candidate.mtime)
        note = NewNote(row.archive_path, row.phone_path, row.size, info.duration_s, info.error)
        self._report.new_notes.append(note)
        self._report.bytes_copied += temp.size
        if candidate.renamed:
            self._report.warnings.append(
                f"{row.phone_path}: the name is not usable as a file name here; archived as {row.archive_path}"
            )
        if info.error:
            self._report.warnings.append(f"{row.archive_path}: archived, but the audio is unreadable ({info.error})")
        self._on_event(Event("note", message=row.archive_path, files=1, bytes=temp.size))

    def _see(self, candidate: Candidate, note_id: int) -> None:
        self._catalog.add_sighting(
            device_serial=self._serial, phone_path=candidate.path, size=candidate.size, mtime=candidate.mtime, note_id=note_id
        )

    @staticmethod
    def _same(existing: Path, temp: TempNote) -> bool:
        """An uncatalogued file already at the name (a run cut off between link and catalog
        row) with exactly our bytes: adopt it instead of publishing a second copy."""
        try:
            return existing.stat().st_size == temp.size and file_sha256(existing) == temp.sha256
        except OSError:
            return False


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
