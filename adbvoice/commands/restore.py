"""`restore` and `send`: putting archived notes, and recordings from this computer, on the phone."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from adbvoice import errors
from adbvoice.commands.common import (
    AdbKeyOpt,
    ArchiveArg,
    AuthTimeoutOpt,
    IoTimeoutOpt,
    JsonOpt,
    PhoneOpt,
    QuietOpt,
    SerialOpt,
    TcpOpt,
    VerboseOpt,
    WifiOpt,
    call,
    call_cancellable,
    fail,
    phone_options,
)
from adbvoice.commands.progress import EventPrinter
from adbvoice.display import printable, text_path
from adbvoice.unattended.settings import resolve

app = typer.Typer()


@app.command()
def restore(
    archive: ArchiveArg = None,
    tcp: TcpOpt = None,
    wifi: WifiOpt = False,
    phone: PhoneOpt = None,
    serial: SerialOpt = None,
    adb_key: AdbKeyOpt = None,
    note: Annotated[
        Optional[list[str]], typer.Option(metavar="NOTE", help="Only this note (catalog id or archive path); repeatable.")
    ] = None,
    since: Annotated[Optional[str], typer.Option(metavar="DATE", help="Recorded on or after DATE (2021-03-07, 2021-03 or 2021).")] = None,
    until: Annotated[Optional[str], typer.Option(metavar="DATE", help="Recorded on or before DATE (a month or year: its end).")] = None,
    device: Annotated[Optional[list[str]], typer.Option(metavar="NAME", help="Archived from this phone (model or serial); repeatable.")] = None,
    source: Annotated[Optional[list[str]], typer.Option(metavar="SOURCE", help="voice, business, legacy or audio (or a source as ls shows it); repeatable.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show where each note would go; put nothing on the phone.")] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    auth_timeout: AuthTimeoutOpt = 60.0,
    io_timeout: IoTimeoutOpt = 30.0,
) -> None:
    """Put archived notes back on the phone, at the paths WhatsApp plays them from.

    A note goes to a temporary name, and takes its name only once the phone's own hash matches the archive's; a different file already at a note's path is left alone.

    Example: adbvoice restore --since 2021 --dry-run
    """
    from adbvoice.restore.run import RestoreConfig
    from adbvoice.restore.run import restore as run_restore
    from adbvoice.views.listing import make_filter

    keep = call(verbose, lambda: make_filter(since=since, until=until, devices=device or (), sources=source or ()),
                as_json=as_json)
    settings = call(verbose, lambda: resolve({"archive": archive, "tcp": tcp, "serial": serial, "adb_key": adb_key,
                                              "wifi": wifi or None, "phone": phone}), as_json=as_json)
    config = RestoreConfig(
        archive=settings["archive"],
        connect=call(verbose, lambda: phone_options(settings, auth_timeout, io_timeout), as_json=as_json),
        keep=keep.matches,
        notes=tuple(note or ()),
        dry_run=dry_run,
    )
    printer = EventPrinter(quiet=quiet or as_json, verbose=False)  # -v lists every file's fate at the end
    report = call_cancellable(verbose, printer, lambda cancel: run_restore(config, printer, cancel), as_json=as_json)
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        if dry_run or verbose:
            for decision, fate, why in report.fates():
                where = text_path(decision.path) if decision.path else "-"
                print(printable(f"{fate:<14} {where}  ({decision.note.archive_path}{'; ' + why if why else ''})"))
        for message in report.warnings:
            printer.warn(message)
        if not quiet or report.exit_code:
            print(report.summary_line())
    if report.stopped is not None:  # under --json, the report above says it too ("stopped")
        raise fail(report.stopped, verbose)
    raise typer.Exit(report.exit_code)


@app.command()
def send(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Audio files to put on the phone.", show_default=False)],
    tcp: TcpOpt = None,
    wifi: WifiOpt = False,
    phone: PhoneOpt = None,
    serial: SerialOpt = None,
    adb_key: AdbKeyOpt = None,
    share: Annotated[
        bool, typer.Option("--share", help="Then open Android's share sheet with WhatsApp, so you only pick the chat.")
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    auth_timeout: AuthTimeoutOpt = 60.0,
    io_timeout: IoTimeoutOpt = 30.0,
) -> None:
    """Copy audio files to the phone's Music/adbvoice/ folder, where WhatsApp's attach › Audio lists them.

    Each file is verified by the phone's own hash, and the phone's media scanner is asked to index it at once.

    Example: adbvoice send memo.m4a --share
    """
    from adbvoice.restore.send import SendConfig
    from adbvoice.restore.send import send as run_send

    if share and len(files) != 1:
        raise fail(errors.UsageError("--share opens the share sheet for one file: give exactly one"), verbose,
                   as_json=as_json)
    settings = call(verbose, lambda: resolve({"tcp": tcp, "serial": serial, "adb_key": adb_key, "wifi": wifi or None,
                                              "phone": phone}), as_json=as_json)
    config = SendConfig(
        files=tuple(files),
        connect=call(verbose, lambda: phone_options(settings, auth_timeout, io_timeout), as_json=as_json),
        share=share,
    )
    printer = EventPrinter(quiet=quiet or as_json, verbose=False)  # -v lists every file's fate at the end
    report = call_cancellable(verbose, printer, lambda cancel: run_send(config, printer, cancel), as_json=as_json)
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for message in report.failures:
            print(f"adbvoice: {printable(message)}", file=sys.stderr)
        if verbose:
            for where in report.places():
                print(printable(f"on the phone: {text_path(where)}"))
        if not quiet or report.exit_code:
            print(report.summary_line())
    if report.stopped is not None:  # under --json, the report above says it too ("stopped")
        raise fail(report.stopped, verbose)
    raise typer.Exit(report.exit_code)
