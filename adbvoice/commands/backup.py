"""`backup` and `demo`: copying notes from a phone (a real one, or the built-in demo phone)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from adbvoice import errors
from adbvoice.backup.report import RunReport
from adbvoice.cancel import CancelToken
from adbvoice.commands.common import (
    ArchiveArg,
    IncludeAudioOpt,
    JsonOpt,
    LayoutOpt,
    LogFileOpt,
    NoIncludeAudioOpt,
    PhoneOpt,
    TcpOpt,
    VerboseOpt,
    WifiOpt,
    call,
    either,
)
from adbvoice.commands.notices import (
    NoNotifyAlwaysOpt,
    NoNotifyOpt,
    NotifyAlwaysOpt,
    NotifyOpt,
    announced,
    notifier,
    with_prompts,
)
from adbvoice.commands.progress import EventPrinter
from adbvoice.display import printable
from adbvoice.unattended.runlog import RunLog
from adbvoice.unattended.settings import DEFAULT_ADB_KEY, backup_config, resolve, wifi_choice

app = typer.Typer()


@contextmanager
def signals_cancel(cancel: CancelToken) -> Iterator[None]:
    """Ctrl-C and SIGTERM (cron, systemd, kill) both stop the run the clean way."""
    handler = lambda _signum, _frame: cancel.request()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def print_report(report: RunReport, *, as_json: bool, quiet: bool, verbose: bool) -> None:
    """Every warning the run tells is printed, under --quiet too: an exit code other than 0
    always comes with the reason (a scheduled run's only voice is cron's mail or the journal)."""
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return
    if report.dry_run:
        for item in report.planned:
            print(printable(f"would copy {item.phone_path} -> {item.archive_path}"))
    for message in report.errors:
        print(f"adbvoice: {printable(message)}", file=sys.stderr)
    for message in report.warnings:
        print(f"warning: {printable(message)}", file=sys.stderr)
    for message in report.known_warnings if verbose else ():
        print(f"warning (told before): {printable(message)}", file=sys.stderr)
    if not quiet or report.exit_code != errors.EXIT_OK:
        print(report.summary_line())


@app.command()
def backup(
    archive: ArchiveArg = None,
    tcp: TcpOpt = None,
    wifi: WifiOpt = False,
    phone: PhoneOpt = None,
    serial: Annotated[Optional[str], typer.Option(help="Which phone, when several are attached.")] = None,
    adb_key: Annotated[
        Optional[Path],
        typer.Option(help="adb's private key; created (0600) if missing, as adb does.",
                     show_default=str(DEFAULT_ADB_KEY)),
    ] = None,
    include_audio: IncludeAudioOpt = False,
    no_include_audio: NoIncludeAudioOpt = False,
    layout: LayoutOpt = None,
    log_file: LogFileOpt = None,
    notify: NotifyOpt = False,
    no_notify: NoNotifyOpt = False,
    notify_always: NotifyAlwaysOpt = False,
    no_notify_always: NoNotifyAlwaysOpt = False,
    if_present: Annotated[
        bool, typer.Option("--if-present", help="For cron: exit 0 saying nothing when no phone is reachable, "
                           "and exit 22 saying nothing when another run holds the archive (a run stuck past "
                           "its own expected end is still reported: exit 68).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be copied; change nothing.")] = False,
    transcribe: Annotated[  # two flags, read by common.either (see IncludeAudioOpt there)
        bool, typer.Option("--transcribe", help="Then transcribe the notes not transcribed yet "
                           "(needs the transcribe extra; see `adbvoice transcribe`).")
    ] = False,
    no_transcribe: Annotated[
        bool, typer.Option("--no-transcribe", help="No transcribing, whatever the config says.")
    ] = False,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when all went well (exit 0); else why.")] = False,
    verbose: VerboseOpt = False,
    auth_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="How long to wait for 'Allow USB debugging' on the phone.")
    ] = 60.0,
    io_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Give up when the phone sends nothing for this long.")
    ] = 30.0,
) -> None:
    """Copy every new voice note from the phone into the archive, verified and catalogued.

    Settings not given here come from ADBVOICE_<NAME> variables, then the config file.

    Example: adbvoice backup --tcp 192.168.1.20, or adbvoice backup --wifi
    """
    from adbvoice.unattended.presence import backup_once, target_of

    flags = call(verbose, lambda: dict(
        archive=archive, tcp=tcp, serial=serial, adb_key=adb_key, layout=layout, log_file=log_file,
        include_audio=either(include_audio, no_include_audio, "include-audio"),
        notify=either(notify, no_notify, "notify"), notify_always=either(notify_always, no_notify_always, "notify-always"),
        wifi=wifi or None, phone=phone, transcribe=either(transcribe, no_transcribe, "transcribe"),
    ), as_json=as_json)
    settings = call(verbose, lambda: resolve(flags), as_json=as_json)
    choice = call(verbose, lambda: wifi_choice(settings), as_json=as_json)
    config = call(verbose, lambda: backup_config(
        settings, dry_run=dry_run, auth_timeout_s=auth_timeout, io_timeout_s=io_timeout
    ), as_json=as_json)
    log = call(verbose, lambda: RunLog.open(settings["log_file"]), as_json=as_json) if settings["log_file"] else None
    printer = EventPrinter(quiet=quiet or as_json, verbose=verbose)
    notices = None if dry_run else notifier(settings, log, quiet=quiet or as_json)
    on_event = with_prompts(printer, notices)
    cancel = CancelToken()
    # Under --if-present (cron) a run that finds the archive busy is expected: its exit
    # code says so, and it prints nothing, so cron sends no mail.
    silent = (errors.ArchiveLockedError,) if if_present else ()
    try:
        with signals_cancel(cancel):
            report = call(verbose, lambda: announced(
                notices, target_of(config.connect), unplug=config.connect.tcp is None and choice is None,
                work=lambda: backup_once(config, on_event, cancel, log=log, if_present=if_present,
                                         wifi_choice=choice),
            ), silent, as_json=as_json)
    finally:
        printer.close()
    if report is None:
        if as_json:  # a script still gets its one document
            print(json.dumps({"outcome": "absent", "exit_code": errors.EXIT_OK, "summary": "no phone reachable"}))
        raise typer.Exit(errors.EXIT_OK)
    print_report(report, as_json=as_json, quiet=quiet, verbose=verbose)
    if settings["transcribe"] and not dry_run:
        from adbvoice.commands.transcripts import transcribe_after_backup

        with signals_cancel(cancel):
            call(verbose, lambda: transcribe_after_backup(settings, cancel, quiet=quiet or as_json,
                                                          silent_if_busy=if_present))
    raise typer.Exit(report.exit_code)


@app.command()
def demo(
    folder: Annotated[Path, typer.Argument(help="Where the demo archive goes.")] = Path("adbvoice-demo"),
    verbose: VerboseOpt = False,
) -> None:
    """Try adbvoice without a phone: back up a built-in emulated phone into FOLDER.

    Example: adbvoice demo ./adbvoice-demo
    """
    from adbvoice.demo import run_demo

    printer = EventPrinter(quiet=False, verbose=verbose)
    try:
        report, archive_root = call(verbose, lambda: run_demo(folder, printer))
    finally:
        printer.close()
    print(f"Backed up the demo phone ({report.device}) into {archive_root}:")
    for note in report.new_notes:
        length = f"{note.duration_s:.1f} s" if note.duration_s is not None else note.audio_error
        print(f"  {note.phone_path}\n    -> {archive_root / note.archive_path}  ({length})")
    print(report.summary_line())
    print(f"Next: `adbvoice ls {folder}` lists them; run `adbvoice demo {folder}` again and nothing is copied twice.")
    raise typer.Exit(report.exit_code)
