"""`verify`: is every archived note still the one the catalog recorded?"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from adbvoice.commands.common import ArchiveArg, JsonOpt, VerboseOpt, archive_path, call, fail
from adbvoice.commands.progress import EventPrinter
from adbvoice.display import printable

if TYPE_CHECKING:
    from adbvoice.archive.verify import Changed

app = typer.Typer()


@app.command()
def verify(
    archive: ArchiveArg = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Check presence and size only, reading no note (a flipped bit goes unseen).")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Re-read every archived note and compare it with the catalog (size and SHA-256); change nothing.

    Reports notes missing or changed, and files the catalog does not know.

    Example: adbvoice verify ~/"WhatsApp Voice Notes" --quick
    """
    from adbvoice.archive.verify import verify_archive
    from adbvoice.errors import ArchiveDamagedError

    # The bar shows notes and bytes on a terminal; per-note lines are not wanted even with -v.
    printer = EventPrinter(quiet=as_json, verbose=False)
    try:
        report = call(verbose, lambda: verify_archive(archive_path(archive), quick=quick, on_event=printer),
                      as_json=as_json)
    finally:
        printer.close()
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for path in report.missing:
            print(printable(f"missing  {path}  (in the catalog, no file)"))
        for change in report.changed:
            print(printable(f"changed  {change.archive_path}  ({_why(change)})"))
        for path in report.unknown:
            print(printable(f"unknown  {path}  (not in the catalog)"))
        print(report.summary_line())
    if not report.ok:
        raise fail(ArchiveDamagedError(f"the archive does not match its catalog: {report.problem_counts()}"), verbose)


def _why(change: Changed) -> str:
    if change.reason == "size":
        return f"{change.size:,} bytes, the catalog says {change.expected_size:,}"
    if change.reason == "content":
        return f"SHA-256 {change.sha256[:12]}…, the catalog says {change.expected_sha256[:12]}…"
    return change.reason
