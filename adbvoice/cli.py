"""The command line: parse, call one core function, print. Nothing else lives here.

Each group of commands is its own module under `adbvoice.commands`; this file assembles
them. Errors the user can cause leave as one line on stderr with their exit code
(README's table); anything else is a bug, shown in full only with -v.
"""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

from adbvoice import __version__
from adbvoice.commands import archive, backup, pairing, prune, restore, transcripts, unattended, verify

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Back up WhatsApp voice notes from an Android phone over ADB (USB or Wi-Fi) into a dated, "
    "verified archive on this computer. Nothing leaves the machine.",
)


def _version(value: bool) -> None:
    if value:
        print(f"adbvoice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Back up WhatsApp voice notes from an Android phone over ADB."""


app.add_typer(backup.app)
app.add_typer(archive.app)
app.add_typer(verify.app)
app.add_typer(prune.app)
app.add_typer(restore.app)
app.add_typer(unattended.app)
app.add_typer(pairing.app)
app.add_typer(transcripts.app)


def _examples(typer_app: typer.Typer) -> list[str]:
    """The `Example:` line of every command's docstring, sub-groups included."""
    found = []
    for command in typer_app.registered_commands:
        found += [line.strip().removeprefix("Example:").strip()
                  for line in (command.callback.__doc__ or "").splitlines() if line.strip().startswith("Example:")]
    for group in typer_app.registered_groups:
        found += _examples(group.typer_instance)
    return found


def _one_line_summaries(typer_app: typer.Typer) -> None:
    """Each command's summary in the list of commands: its docstring's first paragraph as one
    line, which the list wraps to the terminal (it would break where the docstring's lines do)."""
    for command in typer_app.registered_commands:
        first = inspect.cleandoc(command.help or command.callback.__doc__ or "").split("\n\n")[0]
        command.short_help = command.short_help or " ".join(first.split())
    for group in typer_app.registered_groups:
        _one_line_summaries(group.typer_instance)


_one_line_summaries(app)
app.info.epilog = "Examples:\n\n" + "\n\n".join(f"  {example}" for example in _examples(app))


def main() -> None:
    app(prog_name="adbvoice")
