"""What every command shares: turning core errors into one line and an exit code, and the
options that mean the same thing everywhere."""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer

from adbvoice import errors
from adbvoice.archive.layout import DEFAULT_LAYOUT, TOKENS
from adbvoice.cancel import CancelToken
from adbvoice.commands.progress import EventPrinter
from adbvoice.display import printable
from adbvoice.phone.connect import ConnectOptions
from adbvoice.unattended.settings import (
    DEFAULT_ADB_KEY,
    DEFAULT_ARCHIVE,
    Settings,
    connect_options,
    resolve,
    wifi_choice,
)

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
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when all went well (exit 0); else why.")]
AuthTimeoutOpt = Annotated[
    float, typer.Option(metavar="SECONDS", help="How long to wait for 'Allow USB debugging' on the phone.")
]
IoTimeoutOpt = Annotated[
    float, typer.Option(metavar="SECONDS", help="Give up when the phone sends nothing for this long.")
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


def phone_options(settings: Settings, auth_timeout: float, io_timeout: float) -> ConnectOptions:
    """How to reach the phone, for the commands that reach one by itself: --tcp, USB, or with
    --wifi the remembered phone's address now (found by mDNS, else its last known one)."""
    from adbvoice.unattended import wifi as wireless

    options = connect_options(settings, auth_timeout_s=auth_timeout, io_timeout_s=io_timeout)
    choice = wifi_choice(settings)
    if choice is None:
        return options
    known, found = wireless.locate(choice, options.connect_timeout_s)
    if found is None:
        raise wireless.not_on_network(known)
    if not found.by_mdns:
        print(f"adbvoice: {wireless.fallback_notice(found)}", file=sys.stderr)
    return replace(options, tcp=(found.host, found.port), serial=None)


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


def call_cancellable(
    verbose: bool, printer: EventPrinter, work: Callable[[CancelToken], T], *, as_json: bool = False
) -> T:
    """`call` a flow that talks to the phone, with Ctrl-C and SIGTERM as its cancel token;
    `printer` (its progress display) is closed however the flow ends."""
    cancel = CancelToken()
    try:
        with signals_cancel(cancel):
            return call(verbose, lambda: work(cancel), as_json=as_json)
    finally:
        printer.close()
