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

from adbvoice.cancel import CancelToken
from adbvoice.commands.common import ArchiveArg, JsonOpt, VerboseOpt, archive_path, call
from adbvoice.config import DEFAULT_ADB_KEY, BackupConfig
from adbvoice.device import ConnectOptions, parse_tcp_address
from adbvoice.layout import DEFAULT_LAYOUT, TOKENS, Layout
from adbvoice.report import RunReport
from adbvoice.ui import EventPrinter

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


def print_report(report: RunReport, printer: EventPrinter, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return
    if report.dry_run:
        for item in report.planned:
            print(f"would copy {item.phone_path} -> {item.archive_path}")
    for message in report.errors:
        print(f"adbvoice: {message}", file=sys.stderr)
    for message in report.warnings:
        printer.warn(message)
    if not quiet or report.errors:
        print(report.summary_line())


@app.command()
def backup(
    archive: ArchiveArg = None,
    tcp: Annotated[
        Optional[str],
        typer.Option(metavar="HOST[:PORT]", help="A phone in Wi-Fi debugging mode (port 5555 unless given). "
                     "Without it: USB, or the phones a running adb server holds."),
    ] = None,
    serial: Annotated[Optional[str], typer.Option(help="Which phone, when several are attached.")] = None,
    adb_key: Annotated[
        Path, typer.Option(help="adb's private key; created (0600) if missing, as adb does.")
    ] = DEFAULT_ADB_KEY,
    include_audio: Annotated[
        bool, typer.Option("--include-audio", help="Also copy 'WhatsApp Audio' (forwarded and attached audio).")
    ] = False,
    layout: Annotated[
        str,
        typer.Option(metavar="TEMPLATE", help="Where notes go in the archive. Tokens: "
                     + ", ".join("{" + t + "}" for t in TOKENS) + "."),
    ] = DEFAULT_LAYOUT,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be copied; change nothing.")] = False,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing unless something went wrong.")] = False,
    verbose: VerboseOpt = False,
    auth_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="How long to wait for 'Allow USB debugging' on the phone.")
    ] = 60.0,
    io_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Give up when the phone sends nothing for this long.")
    ] = 30.0,
) -> None:
    """Copy every new voice note from the phone into the archive, verified and catalogued.

    Example: adbvoice backup --tcp 192.168.1.20
    """
    from adbvoice.run import backup as run_backup

    config = call(verbose, lambda: BackupConfig(
        archive=archive_path(archive),
        connect=ConnectOptions(
            tcp=parse_tcp_address(tcp) if tcp else None,
            serial=serial,
            adb_key=adb_key.expanduser(),
            auth_timeout_s=auth_timeout,
            io_timeout_s=io_timeout,
        ),
        include_audio=include_audio,
        layout=Layout.parse(layout),
        dry_run=dry_run,
    ))
    printer = EventPrinter(quiet=quiet or as_json, verbose=verbose)
    cancel = CancelToken()
    try:
        with signals_cancel(cancel):
            report = call(verbose, lambda: run_backup(config, printer, cancel))
    finally:
        printer.close()
    print_report(report, printer, as_json=as_json, quiet=quiet)
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
