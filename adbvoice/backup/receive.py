"""Receiving pulled files: count, hash and check each one, then hand them to the publisher.

A file is published only when every check passed: the byte count equals the size the
phone listed, the phone's lstat right after sending shows the same size and mtime as
before (else the note is still being recorded and is retried), and the SHA-1 we
computed while receiving equals the phone's own, where the phone could compute one.

Notes are handed over in groups: what arrives whole waits until 64 notes, 16 MB or a
second have gathered, and is then published as one (publish.py) while the next ones
arrive. A group cut off by a lost phone or Ctrl-C is still published, except notes
whose phone hash is not in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from adbvoice.archive.folder import Archive, TempNote
from adbvoice.archive.metadata import audio_info_of
from adbvoice.backup.plan import Candidate
from adbvoice.backup.publish import Publisher, Received, Retry, discard
from adbvoice.backup.report import RunReport
from adbvoice.cancel import CancelToken
from adbvoice.display import text_path
from adbvoice.events import Event
from adbvoice.phone.scripts import PhoneHashes
from adbvoice.phone.sync import FileAbandoned, RemoteStat

STILL_CHANGING = "kept changing while being copied (still being recorded?); left for the next run"
NOT_INTACT = "did not arrive intact: its SHA-1 differed from the phone's own at every attempt"

GROUP_NOTES = 64
GROUP_BYTES = 16 * 1024 * 1024
GROUP_SECONDS = 1.0
# A note still being recorded grows while it is pulled, and is then retried anyway; what it
# can add in one pull is what WhatsApp records in minutes (Opus at 16-32 kbit/s: 1 MiB is
# over four minutes). Past its listed size plus this, the rest of the file is not taken:
# a phone sending on and on would otherwise fill the archive's disk.
GROWTH_ALLOWED = 1 << 20


class Copier:
    """The PullSink for one batch of candidates, pulled in order."""

    def __init__(
        self,
        *,
        archive: Archive,
        batch: Sequence[Candidate],
        hashes: PhoneHashes | None,
        publisher: Publisher,
        report: RunReport,
        on_event: Callable[[Event], None],
        cancel: CancelToken,
    ) -> None:
        self._archive = archive
        self._batch = batch
        self._hashes = hashes
        self._publisher = publisher
        self._report = report
        self._on_event = on_event
        self._cancel = cancel
        self._index = -1
        self._temp: TempNote | None = None
        self._received: list[Received] = []
        self._group_started = 0.0
        self._failed_checks: list[Retry] = []

    @property
    def retries(self) -> list[Retry]:
        """What to pull again: still changing, not intact, or not stored by the disk."""
        return self._failed_checks + self._publisher.retries

    @property
    def _current(self) -> Candidate:
        return self._batch[self._index]

    # --- PullSink ----------------------------------------------------------------

    def begin(self, index: int) -> None:
        self._cancel.check()
        self._publisher.check()
        self._index = index
        self._temp = self._archive.new_temp()

    def chunk(self, data: bytes) -> None:
        if self._temp.size + len(data) > self._current.size + GROWTH_ALLOWED:
            self._failed_checks.append(Retry(self._current, STILL_CHANGING, serious=False))
            self._drop_temp()
            raise FileAbandoned(f"more than {GROWTH_ALLOWED:,} bytes beyond the listed size")
        self._temp.write(data)
        self._on_event(Event("bytes", bytes=len(data)))
        if self._group_due():
            self._pass_on()  # a long note in flight does not hold back the ones before it

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
            self._failed_checks.append(Retry(candidate, STILL_CHANGING, serious=False))
            self._drop_temp()
        elif temp.size != candidate.size:
            self._report.errors.append(
                f"{text_path(candidate.path)}: the phone lists {candidate.size} bytes but sent {temp.size}; not archived"
            )
            self._drop_temp()
        else:
            self._temp = None
            # A note held in memory is parsed here: this thread mostly waits for the phone,
            # the publisher's is the busier one. The name is the archive's (extensions count).
            held = temp.held_bytes()
            info = audio_info_of(held, candidate.wanted.name) if held is not None else None
            self._hold(Received(temp, candidate, self._index, info))

    def _hold(self, item: Received) -> None:
        if not self._received:
            self._group_started = time.monotonic()
        self._received.append(item)
        gathered = sum(r.temp.size for r in self._received)
        if len(self._received) >= GROUP_NOTES or gathered >= GROUP_BYTES or self._group_due():
            self._pass_on()

    def _group_due(self) -> bool:
        return bool(self._received) and time.monotonic() - self._group_started >= GROUP_SECONDS

    def _pass_on(self) -> None:
        """Hand over during the pull; a Ctrl-C held back meanwhile is raised now."""
        self._hand_over()
        self._cancel.check()

    def _hand_over(self, wait_for_hashes: bool = True) -> None:
        """Give the publisher every note received so far whose bytes are the phone's own;
        waiting for the phone's hashes can be interrupted."""
        group, self._received = self._received, []
        try:
            intact = [item for item in group if self._intact(item, wait_for_hashes)]
        except BaseException:
            discard(group)
            raise
        self._publisher.submit(intact)

    def publish(self, *, wait_for_hashes: bool = True) -> None:
        """Publish every note received so far and wait until it is; a Ctrl-C meanwhile is
        raised after. With `wait_for_hashes` False (the phone is gone) a note whose phone
        hash has not arrived is dropped, to be pulled next run."""
        if self._received:
            self._hand_over(wait_for_hashes)
        self._publisher.finish()
        self._cancel.check()

    def abort(self) -> None:
        """Drop what is not published (connection lost, disk full, interrupted)."""
        self._drop_temp()
        discard(self._received)
        self._received = []
        self._publisher.close()

    def _drop_temp(self) -> None:
        if self._temp is not None:
            self._temp.discard()
            self._temp = None

    def _intact(self, item: Received, wait_for_hashes: bool) -> bool:
        """Whether the bytes equal the phone's own SHA-1 (or the phone has none); a note
        that differs is pulled again, one whose hash is not in (and will not come) next run."""
        if self._hashes is None:
            return True
        if wait_for_hashes or self._hashes.settled(item.index):
            phone_sha1 = self._hashes.get(item.index)
            if phone_sha1 in (None, item.temp.sha1):
                return True
            self._failed_checks.append(Retry(item.candidate, NOT_INTACT, serious=True))
        item.temp.discard()
        return False
