"""The log file: one line per run, for the person who reads it days later.

    2024-05-01T03:00:02+0200 outcome=ok exit=0 device="Pixel 7 (R58M12345)" new=12 ...
        ... bytes=3104566 already=4031 warnings=0 errors=0 duration=14.2s archive=/srv/voice

(one line in the file). `key=value` words, quoted as JSON strings where they hold spaces,
so it reads as text and splits with `shlex.split`. It never grows without limit: past
MAX_BYTES the file is renamed to `<name>.1` (replacing the previous one) and a new one is
started, so the log holds at most twice MAX_BYTES.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from adbvoice import errors
from adbvoice.backup.report import RunReport
from adbvoice.display import printable

MAX_BYTES = 1_000_000


def default_log_file() -> Path:
    """Where scheduled runs log when no log file is set: ~/.local/state/adbvoice/log/backup.log on Linux."""
    return platformdirs.user_log_path("adbvoice") / "backup.log"


class RunLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, path: Path) -> RunLog:
        """Checked before the run starts, so a log that cannot be written fails at once."""
        log = cls(path)
        with log._appending():
            pass
        return log

    @contextmanager
    def _appending(self) -> Iterator[int]:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise errors.LogFileError(f"cannot write the log file {self.path}: {exc.strerror or exc}") from exc
        try:
            # Two runs (a scheduled one and `watch`) may end at once: the lock keeps one's
            # rotation from racing the other's append.
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def write(self, **fields: object) -> None:
        """Append one line: the local time, then the fields in the order given."""
        words = [time.strftime("%Y-%m-%dT%H:%M:%S%z")] + [f"{k}={_word(v)}" for k, v in fields.items()]
        line = (" ".join(words) + "\n").encode("utf-8", "replace")
        try:
            with self._appending() as fd:
                if os.fstat(fd).st_size + len(line) <= MAX_BYTES:
                    os.write(fd, line)
                    return
                os.replace(self.path, f"{self.path}.1")
            with self._appending() as fd:
                os.write(fd, line)
        except OSError as exc:
            raise errors.LogFileError(f"cannot write the log file {self.path}: {exc.strerror or exc}") from exc


def logged(
    log: RunLog | None, work: Callable[[], RunReport], *, archive: Path, target: str, so_far: RunReport | None = None
) -> RunReport:
    """Run one backup and log how it ended, whether it returns or raises. `so_far` is the
    report the run fills: a run that fails names the phone as it answered (else `target`,
    as the options name it) and counts the notes it saved."""
    started = time.monotonic()
    try:
        report = work()
    except Exception as exc:
        if log:
            device = so_far.device if so_far and so_far.device else target
            saved = {"new": len(so_far.new_notes), "bytes": so_far.bytes_copied} if so_far and so_far.device else {}
            log.write(outcome=_outcome(exc), exit=getattr(exc, "exit_code", errors.EXIT_INTERNAL), device=device,
                      **saved, duration=since(started), archive=str(archive), message=str(exc) or repr(exc))
        raise
    if log:
        log.write(outcome=report.outcome, exit=report.exit_code, device=report.device or target,
                  new=len(report.new_notes), bytes=report.bytes_copied, already=report.already + report.duplicates,
                  warnings=len(report.warnings), **({"told_before": len(report.known_warnings)} if report.known_warnings else {}),
                  errors=len(report.errors), duration=since(started), archive=str(archive))
    return report


def _word(value: object) -> str:
    """A value as one word: plain when it is one already, else a JSON string."""
    text = str(value)
    return text if re.fullmatch(r"[\w.:/+-]+", text) else json.dumps(printable(text), ensure_ascii=False)


def _outcome(exc: Exception) -> str:
    if isinstance(exc, errors.InterruptedRun):
        return "interrupted"
    if isinstance(exc, errors.ArchiveLockedError):
        return "locked"
    return "failed" if isinstance(exc, errors.AdbVoiceError) else "internal-error"


def since(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"
