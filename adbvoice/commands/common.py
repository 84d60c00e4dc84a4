"""What every command shares: turning core errors into one line and an exit code, and the
options that mean the same thing everywhere."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer

from adbvoice import errors
from adbvoice.archive.layout import DEFAULT_LAYOUT, TOKENS
from adbvoice.display import printable
from adbvoice.unattended.settings import DEFAULT_ADB_KEY, DEFAULT_ARCHIVE, resolve

T = TypeVar("T")

ArchiveArg = Annotated[
    Optional[Path],
    typer.Argument(help=f"The archive folder (default: {DEFAULT_ARCHIVE}).", show_default=False),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Say more, and show details of errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TcpOpt = Annotated[
    Optional[str],
    typer.Option(metavar="HOST[:PORT]", help="A phone in Wi-Fi debugging mode (port 5555 unless given). "
                 "Without it: USB, or the phones a running adb server holds."),
]
WifiOpt = Annotated[
    bool, typer.Option("--wifi", help="The phone paired with `adbvoice pair`, found on the network by mDNS "
                       "(Wireless debugging, Android 11+).")
]
PhoneOpt = Annotated[
    Optional[str], typer.Option(metavar="NAME", help="Which remembered phone, when several are (implies --wifi).")
]
LogFileOpt = Annotated[
    Optional[Path], typer.Option(metavar="PATH", help="Append one line per run here (kept under 2 MB).")
]
# What a backup is told beyond where the phone is; `watch` takes them too, so that a
# scheduled watch can carry them (see unattended/schedule.py).
SerialOpt = Annotated[Optional[str], typer.Option(help="Which phone, when several are attached.")]
AdbKeyOpt = Annotated[
    Optional[Path],
    typer.Option(help="adb's private key; created (0600) if missing, as adb does.", show_default=str(DEFAULT_ADB_KEY)),
]
# A setting a flag turns on and another off (the config file decides when neither is given)
# is two flags, --x and --no-x, read by `either`: one --x/--no-x option takes a column of
# its own in every help screen, which leaves the help 19 characters at 80 columns.
IncludeAudioOpt = Annotated[
    bool, typer.Option("--include-audio", help="Also copy 'WhatsApp Audio' (forwarded and attached audio).")
]
NoIncludeAudioOpt = Annotated[
    bool, typer.Option("--no-include-audio", help="Not even if the config file or ADBVOICE_INCLUDE_AUDIO says so.")
]
LayoutOpt = Annotated[
    Optional[str],
    typer.Option(metavar="TEMPLATE", help=f"Where notes go in the archive; by default {DEFAULT_LAYOUT}. Tokens: "
                 + ", ".join("{" + t + "}" for t in TOKENS) + ".", show_default=False),
]


def either(on: bool, off: bool, flag: str) -> bool | None:
    """The setting a pair of flags gives: True (--x), False (--no-x), None (neither: the
    config decides); UsageError for both."""
    if on and off:
        raise errors.UsageError(f"--{flag} and --no-{flag}: give one of them")
    return True if on else (False if off else None)


def archive_path(given: Path | None) -> Path:
    """The archive argument, else ADBVOICE_ARCHIVE, else the config file's, else the default."""
    return resolve({"archive": given})["archive"]


def fail(
    exc: BaseException, verbose: bool, silent: tuple[type[errors.AdbVoiceError], ...] = (), *, as_json: bool = False
) -> typer.Exit:
    """One line on stderr and the error's exit code; a traceback only for bugs, and only with -v.
    `silent` errors exit with their code and say nothing (cron mails any output). With
    `as_json` stdout gets one JSON document too, `{"error": {"message", "exit_code"}}`, so a
    script that asked for JSON always has something to parse."""
    code = exc.exit_code if isinstance(exc, errors.AdbVoiceError) else errors.EXIT_INTERNAL
    if as_json:
        message = str(exc) if isinstance(exc, errors.AdbVoiceError) else f"internal error: {exc!r}"
        print(json.dumps({"error": {"message": message, "exit_code": code}}, indent=2, ensure_ascii=False))
    if isinstance(exc, silent):
        return typer.Exit(code)
    if isinstance(exc, errors.AdbVoiceError):
        print(f"adbvoice: {printable(str(exc))}", file=sys.stderr)
        if verbose and exc.__cause__ is not None:
            print(f"  caused by: {exc.__cause__!r}", file=sys.stderr)
        return typer.Exit(code)
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    else:
        print(f"adbvoice: internal error: {exc!r} (run again with -v for details, and please report it)",
              file=sys.stderr)
    return typer.Exit(code)


def call(
    verbose: bool, work: Callable[[], T], silent: tuple[type[errors.AdbVoiceError], ...] = (), *, as_json: bool = False
) -> T:
    """Run a core function; turn its errors into one line and an exit code (and, with
    `as_json`, a JSON document on stdout)."""
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - the one place every error is shown
        raise fail(exc, verbose, silent, as_json=as_json) from None
