"""`transcribe` and `search`: the notes' words, heard offline and found again."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from adbvoice.cancel import CancelToken
from adbvoice.commands.backup import signals_cancel
from adbvoice.commands.common import ArchiveArg, JsonOpt, VerboseOpt, archive_path, call
from adbvoice.display import printable
from adbvoice.unattended.settings import Settings, resolve

if TYPE_CHECKING:
    from tqdm import tqdm

    from adbvoice.transcribe.run import Progress, TranscribeOptions, TranscribeReport

app = typer.Typer()

SinceOpt = Annotated[Optional[str], typer.Option(metavar="DATE", help="Recorded on or after DATE (2021-03-07, 2021-03 or 2021).")]
UntilOpt = Annotated[Optional[str], typer.Option(metavar="DATE", help="Recorded on or before DATE (a month or year: its end).")]
BOLD, PLAIN = "\x1b[1m", "\x1b[0m"


class ProgressBar:
    """Notes and minutes of audio done, with an ETA, on a terminal (stderr); nothing otherwise."""

    def __init__(self, *, quiet: bool) -> None:
        self._on = sys.stderr.isatty() and not quiet
        self._bar: tqdm | None = None

    def __call__(self, progress: Progress) -> None:
        if not self._on or not progress.planned:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=round(progress.seconds_planned / 60, 1), unit="min", file=sys.stderr,
                             leave=False, dynamic_ncols=True, bar_format="{desc} {bar} {n:.1f}/{total:.1f} min of audio [{elapsed}<{remaining}]")
        self._bar.n = round(progress.seconds_done / 60, 1)
        self._bar.set_description_str(f"{progress.done}/{progress.planned} notes")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def transcribe_options(settings: Settings, *, since: str | None = None, until: str | None = None) -> TranscribeOptions:
    from adbvoice.speech.engine import LanguageChoice
    from adbvoice.transcribe.run import TranscribeOptions
    from adbvoice.views.listing import parse_day

    return TranscribeOptions(
        archive=settings["archive"], model=settings["model"],
        choice=LanguageChoice(forced=settings["language"], allowed=tuple(settings["languages"])),
        since=parse_day(since, "--since", end=False) if since else None,
        until=parse_day(until, "--until", end=True) if until else None,
    )


def run_transcription(options: TranscribeOptions, *, quiet: bool, cancel: CancelToken) -> TranscribeReport:
    """The run with its progress bar; errors are the caller's to show."""
    from adbvoice.transcribe.run import transcribe_archive

    bar = ProgressBar(quiet=quiet)
    try:
        return transcribe_archive(options, bar, cancel)
    finally:
        bar.close()


def transcribe_after_backup(settings: Settings, cancel: CancelToken, *, quiet: bool, silent_if_busy: bool) -> None:
    """`backup --transcribe` and `watch` with `transcribe = true`: after the backup's result
    is final (archived, durable, reported, logged), hear what it brought. A problem here is a
    warning line; it never changes the backup's exit code. Ctrl-C still stops it."""
    from adbvoice import errors

    try:
        report = run_transcription(transcribe_options(settings), quiet=quiet, cancel=cancel)
    except errors.InterruptedRun:
        raise
    except errors.TranscribeLockedError:
        if not silent_if_busy:
            print("adbvoice: warning: not transcribed now: another transcribe run is working on the archive",
                  file=sys.stderr)
        return
    except errors.AdbVoiceError as exc:
        print(f"adbvoice: warning: the backup is complete, but transcribing failed: {exc}", file=sys.stderr)
        return
    for message in report.skipped if not quiet else ():
        print(f"warning: not transcribed: {printable(message)}", file=sys.stderr)
    if not quiet and (report.transcribed or report.skipped):
        print(report.summary_line())


@app.command()
def transcribe(
    archive: ArchiveArg = None,
    model: Annotated[Optional[str], typer.Option(metavar="NAME|PATH", help="A faster-whisper model name "
                     "(tiny, base, small, large-v3-turbo and others; fetched once) or a CTranslate2 model folder.")] = None,
    language: Annotated[Optional[str], typer.Option(metavar="CODE", help="Every note is in this language (en, es "
                        "and so on): no detection.")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing unless something went wrong.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Transcribe, offline, every note this model has not transcribed yet; resumable at any point.

    Example: adbvoice transcribe --model small --since 2024
    """
    settings = call(verbose, lambda: resolve(dict(archive=archive, model=model, language=language)), as_json=as_json)
    options = call(verbose, lambda: transcribe_options(settings, since=since, until=until), as_json=as_json)
    cancel = CancelToken()
    with signals_cancel(cancel):
        report = call(verbose, lambda: run_transcription(options, quiet=quiet or as_json, cancel=cancel),
                      as_json=as_json)
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for message in report.skipped:
            if not quiet:
                print(f"warning: skipped {printable(message)}", file=sys.stderr)
        if not quiet:
            print(report.summary_line())
    raise typer.Exit(report.exit_code)


@app.command()
def search(
    words: Annotated[list[str], typer.Argument(help="Words the note says (any case, accents optional).")],
    archive: Annotated[Optional[Path], typer.Option(help="The archive (default: the configured one).")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Find notes by what they say: best match first, with the words in context.

    Example: adbvoice search birthday grandma --since 2023
    """
    from adbvoice.views.listing import make_filter, minutes_seconds
    from adbvoice.views.search import search_archive

    hits = call(verbose, lambda: search_archive(archive_path(archive), words, make_filter(since=since, until=until)),
                as_json=as_json)
    if as_json:
        print(json.dumps([hit.to_json() for hit in hits], indent=2, ensure_ascii=False))
        return
    terminal = sys.stdout.isatty()
    for hit in hits:
        at = f", from {minutes_seconds(hit.at_s)}" if hit.at_s is not None else ""
        print(printable(f"{hit.note.recorded_on or '?'}  {minutes_seconds(hit.note.duration_s)}  "
                        f"{hit.note.archive_path}  ({hit.transcript.language}{at})"))
        context = "".join(f"{BOLD}{printable(text)}{PLAIN}" if hit_ and terminal else f"[{printable(text)}]" if hit_
                          else printable(text) for text, hit_ in hit.pieces)
        print(f"    {context}")
    if terminal or not hits:
        print(f"{len(hits):,} note{'s' if len(hits) != 1 else ''} found", file=sys.stderr)
