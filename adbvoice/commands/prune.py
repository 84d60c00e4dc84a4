"""`prune`: free the phone's space; the one command that deletes on the phone."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Optional

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
    phone_options,
)
from adbvoice.commands.progress import EventPrinter
from adbvoice.display import human_bytes, printable, text_path
from adbvoice.unattended.settings import resolve
from adbvoice.whatsapp import kinds_named

if TYPE_CHECKING:
    from adbvoice.prune.report import PruneReport
    from adbvoice.prune.run import Confirm

app = typer.Typer()

_SHOWN = 5  # names shown when asking


@app.command()
def prune(
    archive: ArchiveArg = None,
    tcp: TcpOpt = None,
    wifi: WifiOpt = False,
    phone: PhoneOpt = None,
    serial: SerialOpt = None,
    adb_key: AdbKeyOpt = None,
    older_than: Annotated[
        str, typer.Option(metavar="AGE", help="Only notes recorded before this age: days, weeks or years (90d, 12w, 1y).")
    ] = "90d",
    source: Annotated[
        Optional[list[str]],
        typer.Option(metavar="SOURCE", help="voice, business, legacy or audio (or a source as ls shows it); "
                     "repeatable (default: the voice-note folders, not audio)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List every file and whether it would be deleted, and why; delete nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (needed without a terminal).")] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    auth_timeout: AuthTimeoutOpt = 60.0,
    io_timeout: IoTimeoutOpt = 30.0,
) -> None:
    """Delete from the phone the old voice notes the archive provably holds, to free its space.

    A note goes only if the phone's own hash of it equals its archived copy's, and that copy reads back to the catalog's SHA-256 now. Asks once before deleting.

    Example: adbvoice prune --older-than 90d --dry-run
    """
    from adbvoice.prune.plan import parse_age
    from adbvoice.prune.run import DEFAULT_SOURCES, PruneConfig
    from adbvoice.prune.run import prune as run_prune

    sources = call(verbose, lambda: _sources(source), as_json=as_json)
    days = call(verbose, lambda: parse_age(older_than), as_json=as_json)
    settings = call(verbose, lambda: resolve({"archive": archive, "tcp": tcp, "serial": serial, "adb_key": adb_key,
                                              "wifi": wifi or None, "phone": phone}), as_json=as_json)
    config = PruneConfig(
        archive=settings["archive"],
        connect=call(verbose, lambda: phone_options(settings, auth_timeout, io_timeout), as_json=as_json),
        days=days,
        sources=sources or DEFAULT_SOURCES,
        dry_run=dry_run,
    )
    printer = EventPrinter(quiet=quiet or as_json, verbose=False)
    confirm = (lambda _report: True) if yes else _ask
    report = call_cancellable(
        verbose, printer, lambda cancel: run_prune(config, printer, lambda r: _confirmed(confirm, r, printer), cancel),
        as_json=as_json,
    )
    _print(report, printer, as_json=as_json, quiet=quiet, verbose=verbose)
    raise typer.Exit(report.exit_code)


def _sources(given: list[str] | None) -> frozenset[str]:
    return frozenset().union(*map(kinds_named, given or ()))


def _confirmed(confirm: Confirm, report: PruneReport, printer: EventPrinter) -> bool:
    printer.close()  # the read-back bar is done: the question must stand alone
    return confirm(report)


def _ask(report: PruneReport) -> bool:
    """Show what would go and ask once; without a terminal, refuse (nothing deleted)."""
    ready = report.deletable
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise errors.PruneNeedsConfirmationError(
            f"{len(ready):,} notes could be deleted from {report.device}, but prune asks before deleting and "
            "there is no terminal to ask on: run it again with --yes; nothing deleted"
        )
    days = sorted(d.note.recorded_on or "" for d in ready if d.note)
    lines = [
        f"{len(ready):,} voice notes ({human_bytes(sum(d.size for d in ready))}) recorded "
        f"{days[0] or '?'} to {days[-1] or '?'} are in the archive, checked byte for byte, "
        f"and can be deleted from {report.device}:",
        *(f"  {text_path(d.path)}" for d in ready[:_SHOWN]),
    ]
    if len(ready) > _SHOWN:
        lines.append(f"  … and {len(ready) - _SHOWN:,} more")
    print("\n".join(lines), file=sys.stderr)
    return typer.confirm("Delete them from the phone?", default=False, err=True)


def _print(report: PruneReport, printer: EventPrinter, *, as_json: bool, quiet: bool, verbose: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return
    if report.dry_run:
        for decision in report.decisions:
            if decision.deletable:
                print(printable(f"delete  {text_path(decision.path)}  (archived as {decision.note.archive_path})"))
            else:
                print(printable(f"keep    {text_path(decision.path)}  ({decision.reason})"))
    elif verbose:
        for decision in report.deleted:
            print(printable(f"deleted {text_path(decision.path)}"))
    for message in report.warnings:  # even under --quiet: an exit of 3 must say why
        printer.close()
        print(f"warning: {printable(message)}", file=sys.stderr)
    if not quiet:
        print(report.summary_line())
