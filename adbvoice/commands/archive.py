"""Commands that read the archive back."""

from __future__ import annotations

import json

import typer

from adbvoice.commands.common import ArchiveArg, JsonOpt, VerboseOpt, archive_path, call

app = typer.Typer()


@app.command("ls")
def list_notes(
    archive: ArchiveArg = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List the archived notes, one line (or JSON object) each.

    Example: adbvoice ls ~/"WhatsApp Voice Notes" --json
    """
    from adbvoice.listing import list_archive, note_json, note_line

    notes = call(verbose, lambda: list_archive(archive_path(archive)))
    if as_json:
        print(json.dumps([note_json(n) for n in notes], indent=2, ensure_ascii=False))
    else:
        for note in notes:
            print(note_line(note))
