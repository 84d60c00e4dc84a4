"""`backup`: the one flow, from a frozen config to a RunReport. Never prints, never exits.

lock → sweep tmp/ → connect → survey the phone → plan against the catalog → pull, verify,
publish and catalogue them, a group at a time → retry what was still changing → record the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from adbvoice import errors
from adbvoice.archive.catalog import Catalog
from adbvoice.archive.durability import filesystem_type
from adbvoice.archive.folder import Archive, HeldLock, refuse_unusable
from adbvoice.archive.layout import PORTABLE_FILESYSTEMS
from adbvoice.backup.config import BackupConfig
from adbvoice.backup.plan import Candidate, Plan, make_plan
from adbvoice.backup.publish import Publisher, Retry
from adbvoice.backup.receive import STILL_CHANGING, Copier
from adbvoice.backup.report import PlannedCopy, RunReport
from adbvoice.cancel import CancelToken
from adbvoice.display import text_path
from adbvoice.events import Event
from adbvoice.phone import connect
from adbvoice.phone.connection import LinkClosed, PhoneMisbehaved
from adbvoice.phone.device import Phone, Survey
from adbvoice.phone.sync import SyncError
from adbvoice.whatsapp import Source, sources_for

# A note whose size or mtime keeps changing across this many pulls is being recorded:
# it is left for the next run rather than archived half-finished.
MAX_ATTEMPTS = 3
# Deadlines no trickle of bytes can extend (README, "Everything the phone sends is
# bounded"): listing the phone gets this many I/O timeouts (10 minutes by default; a
# million notes list in a few); a round of copying gets as many again, plus its bytes at
# the slowest rate a working link has (a weak Wi-Fi signal moves 1 Mbit/s, 125 KB/s), plus
# a little per file.
SURVEY_TIMEOUTS = 20
SLOWEST_BYTES_PER_S = 100_000
PER_FILE_S = 0.05
# What the lock file says a run expects to take, for a later run to tell a hung one: until
# the plan is known, connecting, the Allow wait and listing; then every round of copying,
# with the notes written at the slowest a disk goes (a USB stick, 1 MB/s), and a margin.
SLOWEST_DISK_BYTES_PER_S = 1_000_000
MARGIN_S = 600


def copy_deadline_s(config: BackupConfig, files: int, nbytes: int) -> float:
    """How long one round of copying `files` notes of `nbytes` in all may take."""
    return SURVEY_TIMEOUTS * config.connect.io_timeout_s + nbytes / SLOWEST_BYTES_PER_S + files * PER_FILE_S


def backup(
    config: BackupConfig,
    on_event: Callable[[Event], None],
    cancel: CancelToken | None = None,
    report: RunReport | None = None,
) -> RunReport:
    """Run one backup; `report` (a fresh one by default) is filled as it goes, so a caller
    holding it knows, when the run fails, which phone answered and what was saved."""
    cancel = cancel or CancelToken()
    report = report or RunReport(dry_run=config.dry_run)
    config = _for_filesystem(config)
    if config.dry_run:
        return _dry_run(config, report, on_event)
    root = config.archive.expanduser().absolute()
    phone = None
    if not Archive(root).private.is_dir():
        # A new archive is created only once the phone has answered: a run that cannot
        # connect leaves no empty folder behind. An existing one is locked first, so a
        # second run exits at once without touching the phone (a USB phone has one user).
        refuse_unusable(root)
        phone = _connect(config, on_event)
    try:
        archive = Archive.open(root, create=True)
        report.lasting.extend(archive.notices)  # lasting too: told once, not every night
        c = config.connect
        with archive.lock(c.connect_timeout_s + c.auth_timeout_s + SURVEY_TIMEOUTS * c.io_timeout_s + MARGIN_S) as held:
            archive.sweep_tmp()
            catalog = Catalog.open(archive.catalog_path)
            try:
                phone = phone or _connect(config, on_event)
                return _backup_locked(config, archive, held, catalog, phone, report, on_event, cancel)
            finally:
                catalog.close()
    finally:
        if phone is not None:
            phone.close()


def _for_filesystem(config: BackupConfig) -> BackupConfig:
    """Names FAT, exFAT, NTFS and SMB take, where the archive is on one of them (decided
    by the filesystem's type, so the same on every run there)."""
    portable_names = filesystem_type(config.archive.expanduser().absolute()) in PORTABLE_FILESYSTEMS
    return replace(config, layout=replace(config.layout, portable_names=portable_names))


def _connect(config: BackupConfig, on_event: Callable[[Event], None]) -> Phone:
    return connect.connect(config.connect, lambda text: on_event(Event("prompt", text)))


def _survey(
    phone: Phone, config: BackupConfig, report: RunReport, catalog: Catalog | None
) -> tuple[Survey, list[Source]]:
    """List the phone and keep the sources that exist; NoWhatsAppFoldersError if none does.
    What it finds odd lasts (a link, a folder the phone cannot read): `report.lasting`."""
    candidates = sources_for(config.include_audio)
    known = {serial: fp for serial, (fp, _notes) in catalog.listing_fingerprints().items()} if catalog else None
    phone.deadline.set(SURVEY_TIMEOUTS * config.connect.io_timeout_s, "listing the phone")
    survey = phone.survey([s.path for s in candidates], known)
    identity = survey.identity
    if config.expect_serial and identity.serial != config.expect_serial:
        raise errors.WrongPhoneError(
            f"{identity.label} answered over {identity.transport}, not the remembered phone (serial "
            f"{config.expect_serial}): another device has its address now; nothing was copied"
        )
    phone.deadline.clear()
    report.device = identity.label
    report.device_serial = identity.serial
    report.device_model = identity.model
    report.listed_by = survey.listed_by
    report.lasting.extend(f"the phone said: {line}" for line in survey.problems)
    present = []
    for source in candidates:
        root = survey.roots[source.path.encode()]
        if root.is_dir:
            present.append(source)
        elif root.is_link:
            report.lasting.append(f"{source.path}: a symbolic link, not followed")
    if not present:
        looked = "; ".join(s.path for s in candidates)
        raise errors.NoWhatsAppFoldersError(
            f"no WhatsApp voice-note folder on {survey.identity.label} (looked in {looked}): "
            "is WhatsApp installed, and has this phone ever received a voice note?"
        )
    return survey, present


def _plan(survey: Survey, sources: Sequence[Source], catalog: Catalog | None, config: BackupConfig) -> Plan:
    if survey.unchanged:  # the phone lists exactly what the last complete backup archived
        return Plan(already=catalog.listing_fingerprints()[survey.identity.serial][1])
    seen = catalog.known_sightings(survey.identity.serial) if catalog else {}
    return make_plan(survey.entries, sources, seen, config.layout, survey.identity.model)


def _announce(plan: Plan, survey: Survey, report: RunReport, on_event: Callable[[Event], None]) -> None:
    identity = survey.identity
    on_event(Event("connected", f"{identity.label} over {identity.transport}"))
    report.already = plan.already
    report.lasting.extend(plan.notices)
    on_event(Event("planned", f"{len(plan.copy)} to copy, {plan.already} already archived",
                   files=len(plan.copy), bytes=plan.bytes_to_copy))


def _dry_run(config: BackupConfig, report: RunReport, on_event: Callable[[Event], None]) -> RunReport:
    """What a backup would copy and where, without creating or changing anything on disk."""
    archive = Archive(config.archive.expanduser().absolute())
    catalog = Catalog.open(archive.catalog_path, read_only=True) if archive.catalog_path.exists() else None
    try:
        phone = _connect(config, on_event)
        try:
            survey, sources = _survey(phone, config, report, catalog)
            plan = _plan(survey, sources, catalog, config)
            _announce(plan, survey, report, on_event)
            _tell_once(report, catalog, survey)
        except LinkClosed as exc:
            raise _lost(exc, report) from exc
        finally:
            phone.close()
    finally:
        if catalog:
            catalog.close()
    report.planned = [PlannedCopy(text_path(c.path), c.wanted.as_posix(), c.size) for c in plan.copy]
    return report


def _backup_locked(
    config: BackupConfig,
    archive: Archive,
    held: HeldLock,
    catalog: Catalog,
    phone: Phone,
    report: RunReport,
    on_event: Callable[[Event], None],
    cancel: CancelToken,
) -> RunReport:
    run_id = None
    try:
        survey, sources = _survey(phone, config, report, catalog)
        identity = survey.identity
        catalog.unmark(identity.serial, [e.path for e in survey.entries])  # pruned notes put back on the phone
        run_id = catalog.start_run(device_serial=identity.serial, device_model=identity.model, transport=identity.transport)
        plan = _plan(survey, sources, catalog, config)
        nbytes = plan.bytes_to_copy
        held.expect(MAX_ATTEMPTS * copy_deadline_s(config, len(plan.copy), nbytes)
                    + nbytes / SLOWEST_DISK_BYTES_PER_S + MARGIN_S)
        _announce(plan, survey, report, on_event)
        _tell_once(report, catalog, survey)
        complete = _copy(phone, config, plan.copy, archive, catalog, survey, run_id, report, on_event, cancel)
        if survey.fingerprint is not None and not survey.unchanged:
            archived = report.already + report.duplicates + len(report.new_notes)
            unsettled = not complete or survey.problems  # e.g. a folder the phone could not read
            catalog.remember_listing(identity.serial, None if unsettled else survey.fingerprint, archived)
    except LinkClosed as exc:
        error = _lost(exc, report)
        _record(catalog, run_id, report, error)
        raise error from exc
    except errors.InterruptedRun as exc:
        error = errors.InterruptedRun(f"interrupted; {_saved(report)} before it stopped, the next run copies the rest")
        _record(catalog, run_id, report, error)
        raise error from exc
    except errors.AdbVoiceError as exc:
        _record(catalog, run_id, report, exc)
        raise
    catalog.remember_reported(identity.serial, report.lasting, complete=not survey.unchanged)
    _record(catalog, run_id, report, None)
    return report


def _tell_once(report: RunReport, catalog: Catalog | None, survey: Survey) -> None:
    """A warning about the phone's lasting state is told by the first run that finds it;
    the runs after it know it (`known_warnings`) and say nothing, so a nightly job on a
    phone with a permanent oddity is quiet and exits 0 from the second night on. An
    unchanged listing (not fetched again) still holds every oddity told about it."""
    told = catalog.reported_warnings(survey.identity.serial) if catalog else set()
    for warning in report.lasting:
        (report.known_warnings if warning in told else report.warnings).append(warning)
    if survey.unchanged:
        report.known_warnings.extend(sorted(told - set(report.lasting)))


def _copy(
    phone: Phone,
    config: BackupConfig,
    planned: list[Candidate],
    archive: Archive,
    catalog: Catalog,
    survey: Survey,
    run_id: int,
    report: RunReport,
    on_event: Callable[[Event], None],
    cancel: CancelToken,
) -> bool:
    """Copy the planned notes; True when every one is archived (nothing left for next time)."""
    pending = [Retry(c, STILL_CHANGING, serious=False) for c in planned]
    for attempt in range(MAX_ATTEMPTS):
        if not pending:
            return not report.errors
        batch = [r.candidate for r in pending]
        phone.deadline.set(copy_deadline_s(config, len(batch), sum(c.size for c in batch)), "copying the notes")
        if attempt:
            batch = _refresh(phone, batch, report)
        paths = [c.path for c in batch]
        hashes = phone.start_hashing(paths)
        events = _one_at_a_time(on_event)  # told by this thread and by the publisher's
        publisher = Publisher(
            archive=archive,
            catalog=catalog,
            device_serial=survey.identity.serial,
            device_model=survey.identity.model,
            run_id=run_id,
            report=report,
            on_event=events,
            cancel=cancel,
        )
        copier = Copier(
            archive=archive, batch=batch, hashes=hashes, publisher=publisher, report=report, on_event=events, cancel=cancel
        )
        try:
            phone.pull_many(paths, copier)
        except SyncError as exc:
            copier.publish()
            report.errors.append(f"the phone's file service failed: {exc}")
            return False
        except errors.InterruptedRun:
            copier.publish()  # what arrived whole before Ctrl-C is kept
            raise
        except LinkClosed:
            copier.publish(wait_for_hashes=False)  # and what arrived verified before the phone left
            raise
        else:
            copier.publish()
        finally:
            copier.abort()
            if hashes:
                hashes.close()
        pending = copier.retries
    phone.deadline.clear()
    for retry in pending:
        (report.errors if retry.serious else report.warnings).append(f"{text_path(retry.candidate.path)}: {retry.reason}")
    return not pending and not report.errors


def _one_at_a_time(on_event: Callable[[Event], None]) -> Callable[[Event], None]:
    lock = threading.Lock()

    def tell(event: Event) -> None:
        with lock:
            on_event(event)

    return tell


def _refresh(phone: Phone, pending: list[Candidate], report: RunReport) -> list[Candidate]:
    """Size and mtime as they are now, for another attempt; a vanished file is reported."""
    fresh = []
    for candidate, now in zip(pending, phone.stat_many([c.path for c in pending])):
        if now.exists and now.is_file:
            fresh.append(replace(candidate, size=now.size, mtime=now.mtime))
        else:
            report.warnings.append(f"{text_path(candidate.path)}: vanished from the phone during the backup")
    return fresh


def _saved(report: RunReport) -> str:
    done = len(report.new_notes)
    return f"{done} new note{'s' if done != 1 else ''} archived and complete"


def _lost(exc: LinkClosed, report: RunReport) -> errors.AdbVoiceError:
    saved = _saved(report)
    if isinstance(exc, PhoneMisbehaved):
        return exc.error(f"stopped: {exc}, which no real phone does; {saved}, nothing else taken from it")
    return errors.ConnectionLostError(f"lost the phone during the backup ({exc}); {saved}, run again to copy the rest")


def _record(catalog: Catalog, run_id: int | None, report: RunReport, error: errors.AdbVoiceError | None) -> None:
    if run_id is None:
        return
    if error is None:
        outcome, code, message = report.outcome, report.exit_code, report.summary_line()
    else:
        outcome = "interrupted" if isinstance(error, errors.InterruptedRun) else "failed"
        code, message = error.exit_code, str(error)
    try:
        catalog.finish_run(
            run_id,
            outcome=outcome,
            exit_code=code,
            message=message,
            new_notes=len(report.new_notes),
            already_archived=report.already + report.duplicates,
            warnings=len(report.warnings),
            errors=len(report.errors),
            bytes_copied=report.bytes_copied,
        )
    except errors.DiskFullError:
        if error is None:
            raise
