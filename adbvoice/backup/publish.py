"""Publishing received notes, a group at a time, on a thread of its own.

A group is published in archive/folder.py's order: its notes made durable together
(archive/durability.py), linked under their dated names, their folders synced once, the audio
metadata read, then the group's catalog rows written in one transaction. Per-note folder
fsyncs and commits were most of a first backup's time.

The thread lets the next notes arrive while the disk works: receiving is network and
hashing, publishing is file creation, syncing and parsing, and each used to wait for the
other. At most one group waits while another is published, so what is held stays bounded.
Signals reach only the main thread, so Ctrl-C never cuts a group short. The first failure
stops publishing: the groups after it are discarded, to be pulled again next run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from adbvoice.archive.catalog import Catalog, NoteRow
from adbvoice.archive.durability import sealer_for
from adbvoice.archive.folder import Archive, FsyncFailed, Published, TempNote, file_sha256
from adbvoice.archive.metadata import AudioInfo, read_audio_info
from adbvoice.backup.plan import Candidate
from adbvoice.backup.report import NewNote, RunReport
from adbvoice.cancel import CancelToken
from adbvoice.display import text_path
from adbvoice.events import Event

SEALERS = 8  # threads syncing a group's notes and folders at once (where each is fsynced)


@dataclass(frozen=True)
class Retry:
    """A file to pull again, and what to say if it never arrives whole."""

    candidate: Candidate
    reason: str
    serious: bool  # an error rather than a warning when attempts run out


@dataclass(frozen=True)
class Received:
    """A file that arrived whole and unchanged, waiting for its group to be handed over
    (once its bytes proved to be the phone's own) and published."""

    temp: TempNote
    candidate: Candidate
    index: int  # in the batch: where the phone's hash of it is
    info: AudioInfo | None  # read while it was received; None: read it once published


Sealing = list[tuple[Received, Future]]  # a group's notes and their syncs under way


def discard(group: Sequence[Received]) -> None:
    for item in group:
        item.temp.discard()


def _drop(sealing: Sealing) -> None:
    """Discard notes once their syncs are over (a temp file is not closed under one)."""
    wait([sealed for _, sealed in sealing])
    discard([item for item, _ in sealing])


class Publisher:
    """The thread that publishes one batch's groups, in the order they were submitted."""

    def __init__(
        self,
        *,
        archive: Archive,
        catalog: Catalog,
        device_serial: str,
        device_model: str,
        run_id: int,
        report: RunReport,
        on_event: Callable[[Event], None],
        cancel: CancelToken,
    ) -> None:
        self._archive = archive
        self._catalog = catalog
        self._serial = device_serial
        self._model = device_model
        self._run_id = run_id
        self._report = report
        self._on_event = on_event
        self._cancel = cancel
        self.retries: list[Retry] = []  # notes the disk failed to store
        self._waiting: queue.Queue[list[Received] | None] = queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._stopping = False
        self._ended = False
        self._sealer = sealer_for(archive.root)  # before the batch's first byte is written
        self._thread = threading.Thread(target=self._work, name="adbvoice-publisher", daemon=True)
        self._thread.start()

    def submit(self, group: list[Received]) -> None:
        """Queue a group (it is the publisher's from now on); waits while another group is
        waiting, with Ctrl-C held back so the group is not lost on the way."""
        if self._failure is not None:
            discard(group)
            raise self._failure
        if group:
            with self._cancel.deferred():
                self._waiting.put(group)

    def check(self) -> None:
        """Raise what stopped the publisher, if anything did."""
        if self._failure is not None:
            raise self._failure

    def finish(self) -> None:
        """Wait until every submitted group is published; raise what stopped it, if anything."""
        self._end()
        self.check()

    def close(self) -> None:
        """Stop: the group being published is finished, the ones still waiting are discarded."""
        self._stopping = True
        self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        with self._cancel.deferred():
            self._waiting.put(None)
            self._thread.join()

    def _work(self) -> None:
        """Seal each group while the one before it is linked, read and catalogued: the
        syncs, the longest step, overlap the rest."""
        try:
            with ThreadPoolExecutor(max_workers=SEALERS, thread_name_prefix="adbvoice-seal") as pool:
                sealing: Sealing = []  # the group whose syncs are under way
                ended = False
                while not ended:
                    group = self._next_group(wait=not sealing)
                    ended = group is None
                    previous, sealing = sealing, []
                    if self._failure is None and not self._stopping:
                        try:
                            if group:
                                sealing, group = self._start_sealing(group, pool), []
                            self._publish(previous, pool)
                            continue
                        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by check()
                            self._failure = exc
                    _drop(previous + sealing)  # a published note's temp name is already gone
                    discard(group or [])
        finally:
            self._sealer.close()  # the pool's syncs are over: leaving the block waited for them

    def _next_group(self, *, wait: bool) -> list[Received] | None:
        """The next group handed over (None: there will be no more), or [] if none is
        waiting and `wait` is False."""
        try:
            return self._waiting.get(block=wait)
        except queue.Empty:
            return []

    def _start_sealing(self, group: list[Received], pool: ThreadPoolExecutor) -> Sealing:
        """Write the group's notes to their temp files one by one (files created in one
        folder by several threads at once only contend for its lock), then have them made
        durable together (archive/durability.py)."""
        for item in group:
            item.temp.store(item.candidate.mtime)
        return list(zip(group, self._sealer.seal([item.temp for item in group], pool)))

    def _publish(self, sealing: Sealing, pool: ThreadPoolExecutor) -> None:
        while sealing:
            sealing = self._publish_sealed(sealing, pool)

    def _publish_sealed(self, sealing: Sealing, pool: ThreadPoolExecutor) -> Sealing:
        """Publish the notes the disk stored (the others are pulled again; a full disk stops
        the run); returns the ones to publish after them (the same bytes received twice:
        the second is a sighting of the first once the first is catalogued)."""
        stored: Sealing = []
        for item, sealed in sealing:
            try:
                sealed.result()
            except FsyncFailed as exc:
                self.retries.append(Retry(item.candidate, f"the disk failed to store it ({exc})", serious=True))
                continue
            stored.append((item, sealed))
        twins = self._catalog.notes_by_sha({item.temp.sha256 for item, _ in stored})
        new: dict[str, tuple[Received, Future]] = {}
        known: list[tuple[Received, int]] = []
        later: Sealing = []
        for item, sealed in stored:
            sha = item.temp.sha256
            if sha in twins:
                item.temp.discard()
                known.append((item, twins[sha]))
            elif sha in new:
                later.append((item, sealed))
            else:
                new[sha] = (item, sealed)
        fresh = [item for item, _ in new.values()]
        published = [
            self._archive.link(item.temp, item.candidate.wanted, lambda existing, t=item.temp: same_bytes(existing, t))
            for item in fresh
        ]
        self._sealer.sync_folders(self._archive.unsynced_folders(), pool)
        # A note that went to disk as it arrived is read here, under its final name: the
        # temp name (.part) would hide an .aac from mutagen.
        infos = [
            item.info if item.info is not None else read_audio_info(self._archive.path_of(place.relpath))
            for item, place in zip(fresh, published)
        ]
        rows = [self._row(item, info, place) for item, info, place in zip(fresh, infos, published)]
        with self._catalog.group():
            for item, row in zip(fresh, rows):
                self._catalog.add_note(row, device_serial=self._serial, phone_path=item.candidate.path, mtime=item.candidate.mtime)
            for item, note_id in known:
                self._see(item.candidate, note_id)
        self._report.duplicates += len(known)
        for item, row in zip(fresh, rows):
            self._announce(item.candidate, row)
        return later

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
            **info.catalog_columns(),
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


def same_bytes(existing: Path, temp: TempNote) -> bool:
    """An uncatalogued file already at the name (a run cut off between link and catalog
    row) with exactly our bytes: adopt it instead of publishing a second copy."""
    try:
        # lstat: a link or a FIFO at the name is never ours (file_sha256 refuses both too).
        return existing.lstat().st_size == temp.size and file_sha256(existing) == temp.sha256
    except OSError:
        return False


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
