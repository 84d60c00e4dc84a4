"""`restore`: put archived notes back on the phone, where WhatsApp looks for them. Never prints.

open the archive (never create one) → lock → choose the notes → connect → the phone's hash
tool → survey its WhatsApp folders → sweep what a cut-off restore left → place each note in
this phone's layout → the phone's hash of each file already at a note's path → (dry run:
stop) → push, a batch at a time, to temp names → the phone's hash → rename (pushing.py).

Nothing on the phone is ever replaced: a path holding other bytes is left alone and reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from adbvoice import errors
from adbvoice.archive.catalog import Catalog, NoteRow, reading
from adbvoice.archive.folder import Archive
from adbvoice.cancel import CancelToken
from adbvoice.events import Event
from adbvoice.phone import connect
from adbvoice.phone.connect import ConnectOptions
from adbvoice.phone.connection import LinkClosed
from adbvoice.phone.device import Phone
from adbvoice.restore import plan, pushing
from adbvoice.restore.plan import Decision
from adbvoice.restore.pushing import Journal, Upload
from adbvoice.restore.report import RestoreReport
from adbvoice.whatsapp import AUDIO_SOURCES, VOICE_SOURCES

_BLOCK = 1 << 20


@dataclass(frozen=True)
class RestoreConfig:
    archive: Path
    connect: ConnectOptions
    keep: Callable[[NoteRow], bool] = lambda _note: True  # the `ls` filters
    notes: tuple[str, ...] = ()  # catalog ids or archive paths; none: every note kept
    dry_run: bool = False
    journal_dir: Path = field(default_factory=pushing.default_journal_dir)


def restore(config: RestoreConfig, on_event: Callable[[Event], None], cancel: CancelToken | None = None) -> RestoreReport:
    cancel = cancel or CancelToken()
    archive = Archive.open(config.archive, create=False)
    with archive.lock():
        with reading(archive.catalog_path) as catalog:
            notes = _chosen(catalog, config)
            sightings = {n.id: catalog.sightings_of(n.id) for n in notes if n.id is not None}
        phone = connect.connect(config.connect, lambda text: on_event(Event("prompt", text)))
        try:
            return _restore(config, archive, notes, sightings, phone, on_event, cancel)
        except LinkClosed as exc:
            raise errors.ConnectionLostError(
                f"lost the phone during the restore ({exc}); every note put back so far is whole, "
                "and the next run puts back the rest"
            ) from exc
        except errors.InterruptedRun as exc:
            raise errors.InterruptedRun(
                "interrupted; every note put back so far is whole, and the next run puts back the rest"
            ) from exc
        finally:
            phone.close()


def _chosen(catalog: Catalog, config: RestoreConfig) -> list[NoteRow]:
    if not config.notes:
        return [n for n in catalog.notes() if config.keep(n)]
    chosen: dict[int, NoteRow] = {}
    for given in config.notes:
        note = catalog.note_by_id(int(given)) if given.isdigit() else catalog.note_by_path(
            PurePosixPath(given).as_posix())
        if note is None or note.id is None:
            raise errors.UnknownNoteError(f"no note {given!r} in the archive's catalog (`adbvoice ls --json` shows ids)")
        if config.keep(note):
            chosen[note.id] = note
    return list(chosen.values())


def _restore(
    config: RestoreConfig,
    archive: Archive,
    notes: list[NoteRow],
    sightings: dict,
    phone: Phone,
    on_event: Callable[[Event], None],
    cancel: CancelToken,
) -> RestoreReport:
    tool = phone.prune_hash_tool()
    if tool is None:
        raise errors.PushRefusedError(
            "the phone offers no shell with sha256sum or md5sum, so adbvoice cannot check a pushed note "
            "before it takes its name: nothing restored"
        )
    survey = phone.survey([s.path for s in VOICE_SOURCES + AUDIO_SOURCES])
    report = RestoreReport(dry_run=config.dry_run, device=survey.identity.label)
    journal = Journal(config.journal_dir, survey.identity.serial)
    swept = 0 if config.dry_run else journal.sweep_leftovers(phone)
    if swept:
        survey = phone.survey([s.path for s in VOICE_SOURCES + AUDIO_SOURCES])
    roots = [root for pair in plan.APPS for root in pair]
    modern = plan.modern_layout(dict(zip(roots, phone.stat_many(roots))), survey.identity.android)
    on_phone = {entry.path: entry.stat for entry in survey.entries}
    report.decisions = _check_there(archive, phone, plan.plan(notes, sightings, on_phone, modern), tool)
    if config.dry_run:
        return report
    ready = [d for d in report.decisions if d.action == plan.PUSH]
    uploads = [Upload(archive.path_of(PurePosixPath(d.note.archive_path)), d.path, d.mtime, d.note.size, d.note.sha256)
               for d in ready]
    on_event(Event("planned", f"restoring {len(uploads):,} notes to {report.device}",
                   files=len(uploads), bytes=sum(u.size for u in uploads)))
    report.outcomes = pushing.push_journaled(phone, uploads, tool, journal, on_event, cancel, swept=swept)
    report.stopped = pushing.stop_error(report.outcomes, report.device)
    return report


def _check_there(archive: Archive, phone: Phone, decisions: list[Decision], tool: str) -> list[Decision]:
    """A file of the note's size at its path: the phone's hash says whether it is the note."""
    waiting = [i for i, d in enumerate(decisions) if d.action == plan.CHECK]
    if not waiting:
        return decisions
    hashes = phone.hash_files([decisions[i].path for i in waiting], tool)
    try:
        said = [hashes.get(n) for n in range(len(waiting))]
    finally:
        hashes.close()
    checked = list(decisions)
    for i, got in zip(waiting, said):
        same = got is not None and got == _digest(archive, decisions[i].note, tool)
        checked[i] = decisions[i].became(plan.THERE) if same else decisions[i].became(plan.CONFLICT, plan.DIFFERENT_FILE)
    return checked


def _digest(archive: Archive, note: NoteRow, tool: str) -> str:
    """The archived note in the phone's hash: the catalog's SHA-256, or its copy's MD5."""
    if tool == "sha256sum":
        return note.sha256
    digest = hashlib.new(tool.removesuffix("sum"))
    try:
        with open(archive.path_of(PurePosixPath(note.archive_path)), "rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()
