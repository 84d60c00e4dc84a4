"""`send`: put recordings from this computer where WhatsApp's audio picker finds them. Never prints.

check every file (there, readable, audio by mutagen) → connect → the phone's hash tool → what
is in the send folder → sweep what a cut-off push left → a free name for each file (or the
same bytes already there) → push to temp names → the phone's hash → rename (pushing.py) →
ask the media scanner to index each file → with --share, the media store's entry for it,
handed to WhatsApp by Android's share intent.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adbvoice import errors
from adbvoice.archive.metadata import read_audio_info
from adbvoice.cancel import CancelToken
from adbvoice.display import printable
from adbvoice.events import Event
from adbvoice.phone import connect, scripts
from adbvoice.phone.connect import ConnectOptions
from adbvoice.phone.connection import LinkClosed
from adbvoice.phone.device import Phone
from adbvoice.phone.sync import RemoteStat
from adbvoice.restore import pushing
from adbvoice.restore.pushing import Journal, Upload
from adbvoice.restore.report import SendReport

SEND_FOLDER = b"/sdcard/Music/adbvoice"
"""Music/ is Android's public folder for audio (Environment.DIRECTORY_MUSIC): the media
scanner files what is in it under the store's audio, on every Android version, and that is
the list WhatsApp's attach › Audio shows. A folder of our own keeps the files together and
apart from the user's music. (Recordings/, for recordings, exists only since Android 12.)"""

MIME_TYPES = {
    ".opus": "audio/ogg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".m4a": "audio/mp4", ".mp3": "audio/mpeg",
    ".aac": "audio/aac", ".amr": "audio/amr", ".wav": "audio/wav", ".flac": "audio/flac", ".3gp": "audio/3gpp",
}
SCAN_WAIT_S = 10.0
"""How long the media store may take to index a sent file before --share gives up: the
scanner works through its queue in the background, usually in well under a second."""


@dataclass(frozen=True)
class SendConfig:
    files: tuple[Path, ...]
    connect: ConnectOptions
    share: bool = False
    journal_dir: Path = field(default_factory=pushing.default_journal_dir)


def check_files(files: tuple[Path, ...]) -> list[Upload]:
    """Every file is a readable regular file whose audio mutagen can read; else the error
    naming the first that is not (nothing is sent)."""
    uploads = []
    for path in files:
        try:
            st = os.stat(path)
            if not os.path.isfile(path):
                raise IsADirectoryError(21, "not a file")
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise errors.SendFileError(f"{path}: cannot send it: {exc.strerror or exc}") from exc
        info = read_audio_info(path)
        if not info.readable:
            raise errors.NotAudioError(
                f"{path} is not audio ({info.error}): send takes recordings such as .m4a, .opus or .mp3; nothing sent"
            )
        uploads.append(Upload(path, b"", int(st.st_mtime), st.st_size))
    return uploads


def send(config: SendConfig, on_event: Callable[[Event], None], cancel: CancelToken | None = None) -> SendReport:
    cancel = cancel or CancelToken()
    uploads = check_files(config.files)
    phone = connect.connect(config.connect, lambda text: on_event(Event("prompt", text)))
    try:
        return _send(config, uploads, phone, on_event, cancel)
    except LinkClosed as exc:
        raise errors.ConnectionLostError(
            f"lost the phone during the send ({exc}); run it again: nothing half sent carries a file's name"
        ) from exc
    except errors.InterruptedRun as exc:
        raise errors.InterruptedRun("interrupted; nothing half sent carries a file's name: run it again") from exc
    finally:
        phone.close()


def _send(
    config: SendConfig, uploads: list[Upload], phone: Phone, on_event: Callable[[Event], None], cancel: CancelToken
) -> SendReport:
    tool = phone.prune_hash_tool()
    if tool is None:
        raise errors.PushRefusedError(
            "the phone offers no shell with sha256sum or md5sum, so adbvoice cannot check a sent file "
            "before it takes its name: nothing sent"
        )
    survey = phone.survey([SEND_FOLDER.decode()])
    report = SendReport(device=survey.identity.label)
    journal = Journal(config.journal_dir, survey.identity.serial)
    swept = journal.sweep_leftovers(phone)
    if swept:
        survey = phone.survey([SEND_FOLDER.decode()])
    there = {entry.path: entry.stat for entry in survey.entries}
    todo = []
    for upload in uploads:
        target, same = _place(phone, upload, there, tool)
        if same:
            report.already.append((str(upload.source), target))
        else:
            there[target] = RemoteStat(0o100644, -1, 0)  # taken by this send
            todo.append(Upload(upload.source, target, upload.mtime, upload.size))
    on_event(Event("planned", f"sending {len(todo):,} files to {report.device}",
                   files=len(todo), bytes=sum(u.size for u in todo)))
    report.outcomes = pushing.push_journaled(phone, todo, tool, journal, on_event, cancel, swept=swept)
    report.stopped = pushing.stop_error(report.outcomes, report.device)
    for where in report.places():
        phone.run_text(scripts.scan_command(where))
        report.scanned.append(where)
    if config.share and report.stopped is None and report.places():
        report.stopped = _share(phone, report.places()[0])
        report.shared = report.places()[0] if report.stopped is None else None
    return report


def _place(phone: Phone, upload: Upload, there: Mapping[bytes, RemoteStat], tool: str) -> tuple[bytes, bool]:
    """The first of `name`, `name-2`, `name-3`… that is free, or holds these very bytes
    (then True: it is already there)."""
    name = os.fsencode(upload.source.name)
    stem, dot, ext = name.rpartition(b".")
    stem, ext = (stem, dot + ext) if stem else (name, b"")
    number = 1
    while True:
        target = SEND_FOLDER + b"/" + (name if number == 1 else b"%s-%d%s" % (stem, number, ext))
        held = there.get(target)
        if held is None:
            return target, False
        if held.is_file and held.size == upload.size and _same_bytes(phone, upload.source, target, tool):
            return target, True
        number += 1


def _same_bytes(phone: Phone, source: Path, target: bytes, tool: str) -> bool:
    hashes = phone.hash_files([target], tool)
    try:
        theirs = hashes.get(0)
    finally:
        hashes.close()
    digest = hashlib.new(tool.removesuffix("sum"))
    with open(source, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return theirs == digest.hexdigest()


def _share(phone: Phone, where: bytes) -> errors.AdbVoiceError | None:
    """Open Android's share sheet for the file, to WhatsApp: a content:// URI of the media
    store's entry, which the scanner creates in its own time, so it is waited for."""
    shown = printable(where.decode("utf-8", "replace"))
    deadline = time.monotonic() + SCAN_WAIT_S
    media_id = scripts.parse_media_id(phone.run_text(scripts.media_id_command(where)))
    while media_id is None and time.monotonic() < deadline:
        time.sleep(0.25)
        media_id = scripts.parse_media_id(phone.run_text(scripts.media_id_command(where)))
    if media_id is None:
        return errors.ShareError(
            f"the phone's media store did not index {shown} within {SCAN_WAIT_S:.0f} s, so it cannot be shared "
            "yet; the file is on the phone: in WhatsApp, attach › Audio lists it"
        )
    mime = MIME_TYPES.get(os.path.splitext(where.decode("utf-8", "replace"))[1].lower(), "audio/*")
    failure = printable(scripts.share_failure(phone.run_text(scripts.share_command(media_id, mime))) or "")
    if failure:
        return errors.ShareError(
            f"the phone did not open WhatsApp's share sheet ({failure}): is WhatsApp installed? The file is on "
            f"the phone at {shown}: in WhatsApp, attach › Audio lists it"
        )
    return None
