"""Receiving pulled files into the archive: verify, publish, read metadata, catalogue.

A file is published only when every check passed: the byte count equals the size the
phone listed, the phone's lstat right after sending shows the same size and mtime as
before (else the note is still being recorded and is retried), and the SHA-256 we
computed while writing equals the phone's own, where the phone could compute one.

Notes are published in groups: what arrives whole waits (in the archive's tmp/) until
64 notes, 16 MB or a second have gathered, then the group is sealed, linked, its folders
synced once and its catalog rows written in one transaction (archive.py gives the order).
Per-note folder fsyncs and commits were most of a first backup's time. A group cut off
by a lost phone or Ctrl-C is still published, except notes whose phone hash is not in.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from adbvoice.archive import Archive, FsyncFailed, Published, TempNote
from adbvoice.cancel import CancelToken
from adbvoice.catalog import Catalog, NoteRow
from adbvoice.metadata import AudioInfo, read_audio_info
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

GROUP_NOTES = 64
GROUP_BYTES = 16 * 1024 * 1024
GROUP_SECONDS = 1.0
SEALERS = 8  # threads fsyncing a group's notes at once


@dataclass(frozen=True)
class Received:
    """A file that arrived whole and unchanged, waiting for its group to be published."""

    temp: TempNote
    candidate: Candidate
    index: int  # in the batch: where the phone's hash of it is


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
        self._received: list[Received] = []
        self._group_started = 0.0
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
        if self._group_due():
            self.publish()  # a long note in flight does not hold back the ones before it

    def fail(self, message: str) -> None:
        self._drop_temp()
        shown = text_path(self._current.path)
        if "No such file" in message:
            self._report.warnings.append(f"{shown}: vanished from the phone during the backup")
        else:
            self._report.errors.append(f"{shown}: the phone refused to send it ({message})")

    def finish(self, after: RemoteStat) -> None:
        temp, candidate = self._temp, self._current
        if not after.exists or (after.size, after.mtime) != (candidate.size, candidate.mtime):
            self.retries.append(Retry(candidate, STILL_CHANGING, serious=False))
            self._drop_temp()
        elif temp.size != candidate.size:
            self._report.errors.append(
                f"{text_path(candidate.path)}: the phone lists {candidate.size} bytes but sent {temp.size}; not archived"
            )
            self._drop_temp()
        else:
            self._temp = None
            self._hold(Received(temp, candidate, self._index))

    def _hold(self, item: Received) -> None:
        if not self._received:
            self._group_started = time.monotonic()
        self._received.append(item)
        gathered = sum(r.temp.size for r in self._received)
        if len(self._received) >= GROUP_NOTES or gathered >= GROUP_BYTES or self._group_due():
            self.publish()

    def _group_due(self) -> bool:
        return bool(self._received) and time.monotonic() - self._group_started >= GROUP_SECONDS

    def abort(self) -> None:
        """Drop what is not published (connection lost, disk full, interrupted)."""
        self._drop_temp()
        for item in self._received:
            item.temp.discard()
        self._received = []

    def _drop_temp(self) -> None:
        if self._temp is not None:
            self._temp.discard()
            self._temp = None

    # --- publishing --------------------------------------------------------------

    def publish(self, *, wait_for_hashes: bool = True) -> None:
        """Publish every note received so far. With `wait_for_hashes` False (the phone is
        gone) a note whose phone hash has not arrived is dropped, to be pulled next run.
        Waiting for hashes can be interrupted; sealing, linking and cataloguing cannot."""
        while self._received:
            group, self._received = self._received, []
            try:
                intact = [item for item in group if self._intact(item, wait_for_hashes)]
                with self._cancel.shield():
                    self._publish_group(intact)
            except BaseException:
                for item in group:
                    item.temp.discard()
                raise

    def _publish_group(self, group: list[Received]) -> None:
        new: dict[str, Received] = {}
        known: list[tuple[Received, int]] = []
        for item in group:
            sha = item.temp.sha256
            twin = self._catalog.note_by_sha(sha)
            if twin is not None:
                item.temp.discard()
                known.append((item, twin.id))
            elif sha in new:  # the same bytes twice in one group: the second one is a
                self._received.append(item)  # sighting of the first, recorded in the next group
            else:
                new[sha] = item
        fresh = self._seal_all(list(new.values()))
        published = [
            self._archive.link(item.temp, item.candidate.wanted, lambda existing, t=item.temp: self._same(existing, t))
            for item in fresh
        ]
        self._archive.sync_folders()
        # Read under the final name: the temp name (.part) would hide an .aac from mutagen.
        infos = [read_audio_info(self._archive.path_of(place.relpath)) for place in published]
        rows = [self._row(item, info, place) for item, info, place in zip(fresh, infos, published)]
        with self._catalog.group():
            for item, row in zip(fresh, rows):
                self._catalog.add_note(row, device_serial=self._serial, phone_path=item.candidate.path, mtime=item.candidate.mtime)
            for item, note_id in known:
                self._see(item.candidate, note_id)
        self._report.duplicates += len(known)
        for item, row in zip(fresh, rows):
            self._announce(item.candidate, row)

    def _intact(self, item: Received, wait_for_hashes: bool) -> bool:
        """Whether the bytes equal the phone's own SHA-256 (or the phone has none); a note
        that differs is pulled again, one whose hash is not in (and will not come) next run."""
        if self._hashes is None:
            return True
        if wait_for_hashes or self._hashes.settled(item.index):
            phone_sha = self._hashes.get(item.index)
            if phone_sha in (None, item.temp.sha256):
                return True
            self.retries.append(Retry(item.candidate, NOT_INTACT, serious=True))
        item.temp.discard()
        return False

    def _seal_all(self, items: list[Received]) -> list[Received]:
        """Seal the group's notes side by side: the filesystem commits concurrent fsyncs
        together (a third of the time of one after another here). The ones the disk
        failed to store are pulled again; a full disk stops the run."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(SEALERS, len(items))) as pool:
            futures = [pool.submit(item.temp.seal, item.candidate.mtime) for item in items]
        sealed = []
        for item, future in zip(items, futures):
            try:
                future.result()
            except FsyncFailed as exc:
                self.retries.append(Retry(item.candidate, f"the disk failed to store it ({exc})", serious=True))
                continue
            sealed.append(item)
        return sealed

    def _row(self, item: Received, info: AudioInfo, place: Published) -> NoteRow:
        candidate = item.candidate
        return NoteRow(
            archive_path=place.relpath.as_posix(),
            sha256=item.temp.sha256,
            size=item.temp.size,
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

    def _announce(self, candidate: Candidate, row: NoteRow) -> None:
        self._report.new_notes.append(NewNote(row.archive_path, row.phone_path, row.size, row.duration_s, row.audio_error))
        self._report.bytes_copied += row.size
        if candidate.renamed:
            self._report.warnings.append(
                f"{row.phone_path}: the name is not usable as a file name here; archived as {row.archive_path}"
            )
        if row.audio_error:
            self._report.warnings.append(f"{row.archive_path}: archived, but the audio is unreadable ({row.audio_error})")
        self._on_event(Event("note", message=row.archive_path, files=1, bytes=row.size))

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
