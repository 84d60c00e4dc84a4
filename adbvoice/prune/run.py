"""`prune`: delete from the phone the old notes the archive provably holds. Never prints.

open the archive (never create one) → refuse an archive on an MTP mount → lock → connect →
the phone's hash tool → survey every WhatsApp folder → settle what an interrupted prune left
→ refuse if the archive is on this phone → plan → read each archived copy back → the phone's
own hash of each → (dry run: stop) → ask → delete in batches, each recorded before the phone
is asked and settled after it answers.

Every check that can fail keeps the note: a note leaves the phone only when its archived
copy reads back to the catalog's SHA-256 now, and the phone's hash of it, taken now and once
more right before its `rm`, equals the archived copy's.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

from adbvoice import errors
from adbvoice.archive.catalog import Catalog, NoteRow
from adbvoice.archive.durability import filesystem_type
from adbvoice.archive.folder import Archive
from adbvoice.cancel import CancelToken
from adbvoice.events import Event
from adbvoice.phone import connect, scripts
from adbvoice.phone.connect import ConnectOptions
from adbvoice.phone.connection import LinkClosed, PhoneMisbehaved
from adbvoice.phone.device import Phone
from adbvoice.prune import plan
from adbvoice.prune.plan import Decision
from adbvoice.prune.report import PruneReport
from adbvoice.whatsapp import AUDIO_SOURCES, VOICE_SOURCES

ALL_SOURCES = VOICE_SOURCES + AUDIO_SOURCES
DEFAULT_SOURCES = frozenset(s.kind for s in VOICE_SOURCES)  # not WhatsApp Audio unless named
"""What `prune` frees without `--source`: voice notes. `WhatsApp Audio` holds forwarded
music and recordings the user may not have backed up on purpose, so it goes only when asked."""

BATCH = 200
"""Notes per delete command: each batch is recorded in the catalog before the phone is asked,
so an interruption leaves at most this many deletions to settle by a `stat` on the next run."""

PROBE_TIMEOUT_S = 60
"""How long the phone may search its storage for the archive's probe file. A phone with
100,000 files lists them in a few seconds; a search that does not finish proves nothing."""

PROBE_ROOTS, PROBE_SKIP = ("/sdcard/", "/storage"), ("/storage/emulated",)
"""Everything MTP can show of a phone: its shared storage (/sdcard, which is
/storage/emulated/<user>, searched once) and any SD card or USB drive under /storage."""

_BLOCK = 1 << 20

# Filesystems through which a folder may be a phone's own storage: MTP mounts are FUSE
# (GNOME's gvfs, KDE's kio-fuse, jmtpfs, simple-mtpfs, go-mtpfs, Android File Transfer for Linux).
_PHONE_MOUNT_HINTS = ("mtp", "gvfs", "kio-fuse")


@dataclass(frozen=True)
class PruneConfig:
    archive: Path
    connect: ConnectOptions
    days: int = plan.DEFAULT_AGE_DAYS
    sources: frozenset[str] = DEFAULT_SOURCES  # the catalog's source words (whatsapp.kinds_named)
    dry_run: bool = False
    today: date | None = None  # the day ages count from; today when None


Confirm = Callable[[PruneReport], bool]


def prune(
    config: PruneConfig, on_event: Callable[[Event], None], confirm: Confirm, cancel: CancelToken | None = None
) -> PruneReport:
    """PruneReport of what was deleted and why every other file stays; PruneRefusedError
    when nothing can be proven; the caller's `confirm` is asked once before any deletion."""
    cancel = cancel or CancelToken()
    archive = Archive.open(config.archive, create=False)
    _refuse_phone_mount(archive.root)
    with archive.lock():
        catalog = Catalog.open(archive.catalog_path)
        try:
            phone = connect.connect(config.connect, lambda text: on_event(Event("prompt", text)))
            try:
                return _prune(config, archive, catalog, phone, on_event, confirm, cancel)
            except PhoneMisbehaved as exc:
                raise exc.error(f"stopped: {exc}, which no real phone does; every note deleted so far is recorded") from exc
            except LinkClosed as exc:
                raise errors.ConnectionLostError(
                    f"lost the phone during the prune ({exc}); every note deleted so far is recorded, "
                    "and the next run settles the rest"
                ) from exc
            finally:
                phone.close()
        finally:
            catalog.close()


def _prune(
    config: PruneConfig,
    archive: Archive,
    catalog: Catalog,
    phone: Phone,
    on_event: Callable[[Event], None],
    confirm: Confirm,
    cancel: CancelToken,
) -> PruneReport:
    report = PruneReport(days=config.days, dry_run=config.dry_run)
    tool = phone.prune_hash_tool()
    if tool is None:
        raise errors.PruneRefusedError(
            "the phone offers no shell with sha256sum or md5sum, so adbvoice cannot check that its notes "
            "are the archived ones: nothing deleted"
        )
    report.hash_tool = tool
    _deadline(phone, config, "listing the phone")
    survey = phone.survey([s.path for s in ALL_SOURCES])
    serial, report.device = survey.identity.serial, survey.identity.label
    _deadline(phone, config, "looking for the archive on the phone", PROBE_TIMEOUT_S * SLOWEST_HASH_BYTES_PER_S)
    if not config.dry_run:
        _settle_interrupted(phone, catalog, serial)
    _refuse_archive_on_phone(phone, archive, report.device)
    chosen = [s for s in ALL_SOURCES if s.kind in config.sources]
    notes = {note.id: note for note in catalog.notes()}
    cutoff = plan.cutoff_for(config.days, config.today or date.today())
    decisions = plan.plan(survey.entries, ALL_SOURCES, chosen, catalog.sightings_on(serial), notes, cutoff, config.days)
    digests = _check_archive(archive, decisions, tool, on_event)
    _deadline(phone, config, "the phone's hashing", sum(d.size for d in decisions if d.deletable))
    report.decisions = _check_phone(phone, decisions, digests, tool)
    phone.deadline.clear()  # no deadline runs while the user is asked
    if config.dry_run or not report.deletable:
        return report
    if not confirm(report):
        report.declined = True
        return report
    _delete(phone, catalog, serial, report, digests, tool, on_event, cancel, config)
    return report


# Deadlines a trickle of bytes cannot extend, as a backup has (backup/run.py): listing the
# phone gets this many I/O timeouts; the phone's hashing (and the hash again before each
# rm) as many again plus its bytes at the pace of toybox hashing in software on a slow
# phone.
PHONE_TIMEOUTS = 20
SLOWEST_HASH_BYTES_PER_S = 2_000_000


def _deadline(phone: Phone, config: PruneConfig, what: str, nbytes: int = 0) -> None:
    phone.deadline.set(PHONE_TIMEOUTS * config.connect.io_timeout_s + nbytes / SLOWEST_HASH_BYTES_PER_S, what)


def _refuse_phone_mount(root: Path) -> None:
    kind = filesystem_type(root) or ""
    if any(hint in kind.lower() for hint in _PHONE_MOUNT_HINTS) or "mtp:" in str(root.resolve()):
        raise errors.PruneRefusedError(
            f"{root} is on a {kind or 'MTP'} mount, which may be a phone's own storage: prune deletes only "
            "notes an archive on this computer's own disk holds; nothing deleted"
        )


def _refuse_archive_on_phone(phone: Phone, archive: Archive, label: str) -> None:
    """Leave a file of a random name in the archive and ask the phone to find it: if the
    phone sees it, the archive is the phone's storage (however it is mounted here)."""
    name = f"adbvoice-prune-probe-{secrets.token_hex(16)}"
    probe = archive.private / name
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    try:
        found = phone.find_name(PROBE_ROOTS, name, PROBE_TIMEOUT_S, skip=PROBE_SKIP)
    finally:
        probe.unlink()
    if found is None:
        raise errors.PruneRefusedError(
            f"{label} did not finish searching its storage for the archive within {PROBE_TIMEOUT_S} s, so "
            "adbvoice cannot rule out that the archive is on the phone itself: nothing deleted"
        )
    if found:
        raise errors.PruneRefusedError(
            f"the archive is on {label} itself ({found[0].decode('utf-8', 'replace')}): deleting notes from "
            "the phone would delete their only copy; nothing deleted"
        )


def _settle_interrupted(phone: Phone, catalog: Catalog, serial: str) -> None:
    """Deletions a killed prune asked for without hearing back: gone from the phone → deleted;
    still there → not deleted (this run decides about them afresh)."""
    pending = catalog.deletions_pending(serial)
    if not pending:
        return
    stats = phone.stat_many(pending)
    catalog.mark_deleted(serial, [path for path, st in zip(pending, stats) if not st.exists])
    catalog.unmark(serial, [path for path, st in zip(pending, stats) if st.exists])


def _check_archive(
    archive: Archive, decisions: list[Decision], tool: str, on_event: Callable[[Event], None]
) -> dict[bytes, str]:
    """Read back the archived copy of every deletable note: phone path → the copy's digest
    in the phone's hash (`tool`), for the copies whose SHA-256 is still the catalog's."""
    deletable = [d for d in decisions if d.deletable]
    on_event(Event("planned", f"reading back {len(deletable):,} archived notes",
                   files=len(deletable), bytes=sum(d.size for d in deletable)))
    digests = {}
    for index, decision in enumerate(decisions):
        if not decision.deletable:
            continue
        assert decision.note is not None
        reason, digest = _read_back(archive, decision.note, tool, on_event)
        if reason:
            decisions[index] = decision.kept(reason)
        else:
            digests[decision.path] = digest
        on_event(Event("note", decision.note.archive_path))
    return digests


def _read_back(
    archive: Archive, note: NoteRow, tool: str, on_event: Callable[[Event], None]
) -> tuple[str | None, str]:
    sha256, other = hashlib.sha256(), hashlib.new(tool.removesuffix("sum"))
    path = archive.path_of(PurePosixPath(note.archive_path))
    try:
        # O_NOFOLLOW: a link swapped in for a note is not that note.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return plan.ARCHIVE_MISSING, ""
    except OSError:
        return plan.ARCHIVE_DAMAGED, ""
    with os.fdopen(fd, "rb") as handle:
        try:
            while block := handle.read(_BLOCK):
                sha256.update(block)
                other.update(block)
                on_event(Event("bytes", bytes=len(block)))
        except OSError:
            return plan.ARCHIVE_DAMAGED, ""
    if sha256.hexdigest() != note.sha256:
        return plan.ARCHIVE_DAMAGED, ""
    return None, other.hexdigest()


def _check_phone(phone: Phone, decisions: list[Decision], digests: dict[bytes, str], tool: str) -> list[Decision]:
    """The phone's own hash of every note still deletable must equal its archived copy's."""
    paths = [d.path for d in decisions if d.deletable]
    if not paths:
        return decisions
    hashes = phone.hash_files(paths, tool)
    try:
        said = {path: hashes.get(index) for index, path in enumerate(paths)}
    finally:
        hashes.close()
    checked = []
    for decision in decisions:
        if decision.deletable:
            got = said[decision.path]
            if got is None:
                decision = decision.kept(plan.PHONE_UNHASHED)
            elif got != digests[decision.path]:
                decision = decision.kept(plan.PHONE_DIFFERS)
        checked.append(decision)
    return checked


_OUTCOME_REASONS = {
    scripts.CHANGED: plan.CHANGED_AT_DELETION,
    scripts.NOT_A_FILE: plan.GONE_AT_DELETION,
    scripts.DELETE_FAILED: plan.NOT_DELETED,
}


def _delete(
    phone: Phone,
    catalog: Catalog,
    serial: str,
    report: PruneReport,
    digests: dict[bytes, str],
    tool: str,
    on_event: Callable[[Event], None],
    cancel: CancelToken,
    config: PruneConfig,
) -> None:
    ready = report.deletable
    on_event(Event("planned", f"deleting {len(ready):,} notes from {report.device}",
                   files=len(ready), bytes=sum(d.size for d in ready)))
    kept: dict[bytes, str] = {}
    for start in range(0, len(ready), BATCH):
        cancel.check()
        batch = ready[start : start + BATCH]
        # Ctrl-C waits for the batch: its outcomes must reach the catalog.
        with cancel.deferred():
            _deadline(phone, config, "deleting a batch of notes", sum(d.size for d in batch))
            outcomes = _delete_batch(phone, catalog, serial, batch, digests, tool)
        for decision, outcome in zip(batch, outcomes):
            if outcome == scripts.DELETED:
                report.deleted.append(decision)
                on_event(Event("bytes", bytes=decision.size))
                on_event(Event("note", decision.path.decode("utf-8", "replace")))
            else:
                kept[decision.path] = _OUTCOME_REASONS[outcome]
    report.decisions = [d.kept(kept[d.path]) if d.path in kept else d for d in report.decisions]


def _delete_batch(
    phone: Phone, catalog: Catalog, serial: str, batch: Sequence[Decision], digests: dict[bytes, str], tool: str
) -> list[str]:
    # The order that keeps the catalog true through any cut: first record the batch as
    # 'deleting' (committed before the phone hears of it), then ask the phone, and mark a
    # note 'deleted' only once the phone has said D for it. A kill in between leaves
    # 'deleting' rows, which the next run settles by stat (_settle_interrupted): no note is
    # ever deleted unrecorded, and none is recorded as deleted while it is still there.
    catalog.mark_deleting(serial, [(d.path, _note_id(d)) for d in batch])
    command = phone.start_deleting([(d.path, digests[d.path]) for d in batch], tool)
    try:
        command.wait()
    except LinkClosed:
        command.read_arrived()
        _settle(catalog, serial, batch, scripts.delete_outcomes(command.stdout))
        raise
    outcomes = scripts.delete_outcomes(command.stdout)
    _settle(catalog, serial, batch, outcomes)
    if len(outcomes) != len(batch):
        raise scripts.UnexpectedOutput(f"the delete script answered {len(outcomes)} of {len(batch)} notes")
    return outcomes


def _settle(catalog: Catalog, serial: str, batch: Sequence[Decision], outcomes: list[str]) -> None:
    """Record what the phone said; notes it said nothing of stay 'deleting' for the next run."""
    answered = list(zip(batch, outcomes))
    catalog.mark_deleted(serial, [d.path for d, outcome in answered if outcome == scripts.DELETED])
    catalog.unmark(serial, [d.path for d, outcome in answered if outcome != scripts.DELETED])


def _note_id(decision: Decision) -> int:
    assert decision.note is not None and decision.note.id is not None
    return decision.note.id
