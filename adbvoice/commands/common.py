"""What every command shares: turning core errors into one line and an exit code, and the
options that mean the same thing everywhere."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer

from adbvoice import errors
from adbvoice.config import DEFAULT_ARCHIVE

T = TypeVar("T")

ArchiveArg = Annotated[
    Optional[Path],
    typer.Argument(help=f"The archive folder [default: {DEFAULT_ARCHIVE}]", show_default=False),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Say more, and show details of errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def archive_path(given: Path | None) -> Path:
    return (given or DEFAULT_ARCHIVE).expanduser()


def fail(exc: BaseException, verbose: bool) -> typer.Exit:
    """One line on stderr and the error's exit code; a traceback only for bugs, and only with -v."""
    if isinstance(exc, errors.AdbVoiceError):
        print(f"adbvoice: {exc}", file=sys.stderr)
        if verbose and exc.__cause__ is not None:
            print(f"  caused by: {exc.__cause__!r}", file=sys.stderr)
        return typer.Exit(exc.exit_code)
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    else:
        print(f"adbvoice: internal error: {exc!r} (run again with -v for details, and please report it)",
              file=sys.stderr)
    return typer.Exit(errors.EXIT_INTERNAL)


def call(verbose: bool, work: Callable[[], T]) -> T:
    """Run a core function; turn its errors into one line and an exit code."""
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - the one place every error is shown
        raise fail(exc, verbose) from None
