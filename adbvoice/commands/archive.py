"""Commands that live with the archive: list, count, inspect, rebuild the catalog, export."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from adbvoice.commands.common import ArchiveArg, JsonOpt, VerboseOpt, archive_path, call
from adbvoice.display import printable

app = typer.Typer()
catalog_app = typer.Typer(help="Look after the archive's catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


@app.command("ls")
def list_notes(
    archive: ArchiveArg = None,
    since: Annotated[Optional[str], typer.Option(metavar="DATE", help="Recorded on or after DATE (2021-03-07, 2021-03 or 2021).")] = None,
    until: Annotated[Optional[str], typer.Option(metavar="DATE", help="Recorded on or before DATE (a month or year: its end).")] = None,
    device: Annotated[Optional[list[str]], typer.Option(metavar="NAME", help="From this phone (model or serial); repeatable.")] = None,
    source: Annotated[Optional[list[str]], typer.Option(metavar="SOURCE", help="voice, business, legacy or audio (or a source as ls shows it, such as legacy-business); repeatable.")] = None,
    min_duration: Annotated[Optional[str], typer.Option(metavar="SECONDS", help="At least this long (90 or 1:30).")] = None,
    max_duration: Annotated[Optional[str], typer.Option(metavar="SECONDS", help="At most this long (90 or 1:30).")] = None,
    unreadable: Annotated[bool, typer.Option("--unreadable", help="Only notes whose audio could not be read.")] = False,
    output_format: Annotated[
        Optional[str], typer.Option("--format", metavar="FORMAT", help="table (the default), json or csv.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """List the archived notes, oldest first; the options narrow the list down.

    Example: adbvoice ls --since 2021-03 --until 2021-03 --source business
    """
    from adbvoice.errors import UsageError
    from adbvoice.views.listing import (
        FORMATS,
        latest_transcripts,
        list_archive,
        make_filter,
        note_json,
        notes_csv,
        table_lines,
        transcript_json,
    )

    def work() -> tuple[str, list]:
        chosen = output_format or ("json" if as_json else "table")
        if chosen not in FORMATS or (as_json and chosen != "json"):
            raise UsageError(f"--format {chosen!r}: use one of {', '.join(FORMATS)} (--json means json)")
        keep = make_filter(
            since=since, until=until, devices=device or (), sources=source or (),
            min_duration=min_duration, max_duration=max_duration, unreadable=unreadable,
        )
        return chosen, list_archive(archive_path(archive), keep)

    chosen, notes = call(verbose, work, as_json=as_json or output_format == "json")
    said = call(verbose, lambda: latest_transcripts(archive_path(archive)), as_json=chosen == "json") if chosen != "table" else {}
    if chosen == "json":
        _print_json([{**note_json(n), "transcript": transcript_json(said.get(n.sha256))} for n in notes])
    elif chosen == "csv":
        sys.stdout.write(notes_csv(notes, said))
    else:
        terminal = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if terminal else None
        for line in table_lines(notes, header=terminal, width=width):
            print(printable(line))


@app.command()
def stats(archive: ArchiveArg = None, as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """How many notes, how much listening, from which phones and months, and how the backups went.

    Example: adbvoice stats ~/"WhatsApp Voice Notes"
    """
    from adbvoice.views.stats import archive_stats, stats_lines

    found = call(verbose, lambda: archive_stats(archive_path(archive)), as_json=as_json)
    if as_json:
        _print_json(found.to_json())
    else:
        print("\n".join(printable(line) for line in stats_lines(found, histogram=sys.stdout.isatty())))


@app.command()
def info(
    note: Annotated[str, typer.Argument(help="A catalog id, a path inside the archive, or the note's file.")],
    archive: Annotated[
        Optional[Path],
        typer.Option(help="The archive (by default the one holding NOTE's file, else the usual archive)."),
    ] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Everything the catalog knows about one note, and what its file says now.

    Example: adbvoice info 2021/03/07/PTT-20210307-WA0001.opus
    """
    from adbvoice.views.info import info_lines, note_info

    found = call(verbose, lambda: note_info(note, archive, default_archive=archive_path(None)), as_json=as_json)
    if as_json:
        _print_json(found.to_json())
    else:
        print("\n".join(printable(line) for line in info_lines(found)))


@app.command()
def export(
    archive: ArchiveArg = None,
    html: Annotated[bool, typer.Option("--html", help="A static page to browse and play the notes offline.")] = False,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Where to write it (by default ARCHIVE/voice-notes.html).")
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write one self-contained page listing the notes by day, each with a player.

    Example: adbvoice export --html ~/"WhatsApp Voice Notes" -o ~/voice-notes.html
    """
    from adbvoice.errors import UsageError
    from adbvoice.views.page import export_html

    def work():
        if not html:
            raise UsageError("say what to export: --html (the only format so far)")
        return export_html(archive_path(archive), output)

    done = call(verbose, work)
    print(f"wrote {done.path} ({done.notes:,} notes); open it in a browser, no server needed")


@catalog_app.command()
def rebuild(archive: ArchiveArg = None, as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Rebuild the catalog from the archive's files, keeping what only the old one knew; the old one is kept.

    Example: adbvoice catalog rebuild ~/"WhatsApp Voice Notes"
    """
    from adbvoice.archive.rebuild import rebuild_catalog

    report = call(verbose, lambda: rebuild_catalog(archive_path(archive)), as_json=as_json)
    if as_json:
        _print_json(report.to_json())
    else:
        for warning in report.warnings:
            print(f"warning: {printable(warning)}", file=sys.stderr)
        if verbose:
            for skipped in report.skipped:
                print(f"skipped {printable(skipped)}", file=sys.stderr)
        print(report.summary_line())
    raise typer.Exit(report.exit_code)
