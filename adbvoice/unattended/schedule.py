"""`schedule`: a crontab line or a systemd user timer that runs the backup unattended.

The job must work where nothing of this shell survives: cron starts it with
HOME, SHELL and PATH=/usr/bin:/bin only, from HOME. So it names this very interpreter by
its absolute path (`python -m adbvoice`, the installation that is running now, a venv
included), the archive and the log file by absolute paths, and carries every setting
that is not a default (a flag, an ADBVOICE_ variable or the config file now) as a flag.
It runs `backup --if-present --quiet`: silent when the phone is away or all went well,
so cron mails only trouble; the archive's lock keeps runs from overlapping.

Each archive has at most one job, found again by a marker (a comment line before the
crontab entry; a comment heading each unit file), so installing again replaces it and
`--uninstall` removes exactly what was installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from adbvoice import errors
from adbvoice.unattended.settings import FROM_DEFAULT, Settings

_FLAGS = {"tcp": "--tcp", "serial": "--serial", "adb_key": "--adb-key", "layout": "--layout", "phone": "--phone"}
UNIT_MARKER = "# Installed by `adbvoice schedule`; `adbvoice schedule --systemd --uninstall` removes it."


@dataclass(frozen=True)
class Every:
    text: str
    cron: str  # crontab's five time fields
    calendar: str  # systemd.time OnCalendar=


def parse_every(text: str) -> Every:
    """15m, 1h, 1d...: minutes dividing an hour, hours dividing a day, or daily (at 03:00,
    when phones are usually at home and charging), so every run is evenly spaced."""
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    number, unit = (int(match[1]), match[2]) if match else (0, "")
    step = "*" if number == 1 else f"*/{number}"
    if unit == "m" and number and 60 % number == 0 and number < 60:
        return Every(text, f"{step} * * * *", f"*:00/{number}")
    if unit == "h" and number and 24 % number == 0 and number < 24:
        return Every(text, f"0 {step} * * *", f"00/{number}:00")
    if (unit, number) in (("d", 1), ("h", 24)):
        return Every(text, "0 3 * * *", "*-*-* 03:00:00")
    raise errors.UsageError(
        f"--every {text!r}: use minutes that divide an hour (5m, 10m, 15m, 30m), hours that divide a day "
        "(1h, 2h, 3h, 4h, 6h, 8h, 12h), or 1d"
    )


def backup_command(settings: Settings, log_file: Path) -> list[str]:
    """The scheduled backup's argv: absolute interpreter, archive and log; no environment needed."""
    archive = str(settings["archive"])
    if "\n" in archive or "\n" in str(log_file):
        raise errors.UsageError("the archive and log file paths cannot be scheduled: they contain a line break")
    argv = [str(Path(sys.executable).absolute()), "-m", "adbvoice", "backup", archive,
            "--if-present", "--quiet", "--log-file", str(log_file)]
    for name, flag in _FLAGS.items():
        if settings.source(name) != FROM_DEFAULT and settings[name] is not None:
            argv += [flag, str(settings[name])]
    if settings["include_audio"]:
        argv.append("--include-audio")
    if settings["wifi"]:
        argv.append("--wifi")  # the phone's address is looked up by mDNS at each run
    return argv


# --- cron -------------------------------------------------------------------------------


def cron_line(every: Every, argv: list[str]) -> str:
    # crontab(5): an unescaped % in the command ends it and starts its standard input.
    return f"{every.cron} " + " ".join(shlex.quote(a) for a in argv).replace("%", "\\%")


def cron_marker(archive: Path) -> str:
    return f"# adbvoice: scheduled backup of {archive} (`adbvoice schedule --cron --uninstall` removes it)"


def install_cron(archive: Path, line: str) -> None:
    """Add the job to the user's crontab, replacing this archive's previous one."""
    marker = cron_marker(archive)
    kept, _ = _without(_read_crontab(), marker)
    _write_crontab([*kept, marker, line])


def uninstall_cron(archive: Path) -> bool:
    """Remove this archive's job (its marker and the line after it); False if there was none."""
    kept, found = _without(_read_crontab(), cron_marker(archive))
    if found:
        _write_crontab(kept)
    return found


def _without(lines: list[str], marker: str) -> tuple[list[str], bool]:
    kept: list[str] = []
    skip = found = False
    for line in lines:
        if skip:
            skip = False
        elif line == marker:
            skip = found = True
        else:
            kept.append(line)
    return kept, found


def _crontab(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    program = shutil.which("crontab")
    if program is None:
        raise errors.ScheduleError(
            "crontab is not installed (Debian/Ubuntu: apt install cron); or add the line "
            "`adbvoice schedule --cron` prints to your crontab by hand"
        )
    env = {**os.environ, "LC_ALL": "C"}  # crontab's "no crontab for ..." is matched below
    return subprocess.run([program, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def _read_crontab() -> list[str]:
    result = _crontab("-l")
    if result.returncode == 0:
        return result.stdout.splitlines()
    if "no crontab" in result.stderr:
        return []
    raise errors.ScheduleError(f"`crontab -l` failed: {result.stderr.strip()}")


def _write_crontab(lines: list[str]) -> None:
    if any(line.strip() for line in lines):
        result = _crontab("-", stdin="\n".join(lines) + "\n")
    else:
        result = _crontab("-r")  # it held only our job: leave no empty crontab behind
    if result.returncode != 0:
        raise errors.ScheduleError(f"cannot change your crontab: {result.stderr.strip()}")


# --- systemd ------------------------------------------------------------------------------


def unit_name(archive: Path) -> str:
    """One name per archive, stable across runs: adbvoice-backup-<8 hex digits>."""
    return "adbvoice-backup-" + hashlib.sha256(str(archive).encode()).hexdigest()[:8]


def user_unit_folder() -> Path:
    """Where systemd looks for a user's own units: $XDG_CONFIG_HOME/systemd/user (systemd.unit(5))."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".config") / "systemd" / "user"


def systemd_units(archive: Path, every: Every, argv: list[str]) -> dict[str, str]:
    """The service and timer, by file name."""
    name = unit_name(archive)
    what = _escape_specifiers(f"adbvoice: back up WhatsApp voice notes into {archive}")
    service = (
        f"{UNIT_MARKER}\n[Unit]\nDescription={what}\n\n"
        f"[Service]\nType=oneshot\nExecStart={' '.join(_systemd_word(a) for a in argv)}\n"
        "# 22: another adbvoice run held the archive, so this one stepped aside as designed.\n"
        "SuccessExitStatus=22\n"
    )
    timer = (
        f"{UNIT_MARKER}\n[Unit]\nDescription={what}, every {every.text}\n\n"
        f"[Timer]\nOnCalendar={every.calendar}\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def _escape_specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _systemd_word(arg: str) -> str:
    """One ExecStart= word (systemd.service(5), "Command lines"): %-specifiers and $-variables
    are escaped; a word with spaces, quotes or backslashes is double-quoted."""
    arg = _escape_specifiers(arg).replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def install_systemd(archive: Path, units: dict[str, str]) -> list[Path]:
    """Write the units and enable the timer; ScheduleError (units left written, the
    commands to finish named) when systemctl is missing or has no user session."""
    folder = user_unit_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for filename, text in units.items():
            path = folder / filename
            temp = path.with_name(f".{filename}.tmp")
            temp.write_text(text)
            os.replace(temp, path)
            written.append(path)
    except OSError as exc:
        raise errors.ScheduleError(f"cannot write the systemd units in {folder}: {exc.strerror or exc}") from exc
    timer = f"{unit_name(archive)}.timer"
    for args in (["daemon-reload"], ["enable", "--now", timer]):
        problem = _systemctl(*args)
        if problem:
            raise errors.ScheduleError(
                f"wrote {', '.join(map(str, written))}, but {problem}: in your desktop session run "
                f"`systemctl --user daemon-reload && systemctl --user enable --now {timer}`"
            )
    return written


def uninstall_systemd(archive: Path) -> list[Path]:
    """Stop and remove this archive's timer and service, only if they carry our marker."""
    folder = user_unit_folder()
    name = unit_name(archive)
    ours = [p for p in (folder / f"{name}.timer", folder / f"{name}.service") if _is_ours(p)]
    if not ours:
        return []
    _systemctl("disable", "--now", f"{name}.timer")
    # What `systemctl enable` made, should systemctl be unable to undo it now.
    wanted = folder / "timers.target.wants" / f"{name}.timer"
    if wanted.is_symlink():
        wanted.unlink()
    for path in ours:
        path.unlink()
    _systemctl("daemon-reload")
    return ours


def _is_ours(path: Path) -> bool:
    try:
        return path.read_text().startswith(UNIT_MARKER)
    except OSError:
        return False


def _systemctl(*args: str) -> str | None:
    """Run `systemctl --user ARGS`; what went wrong, or None."""
    program = shutil.which("systemctl")
    if program is None:
        return "systemctl is not available here"
    result = subprocess.run([program, "--user", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[0]
        return f"`systemctl --user {' '.join(args)}` failed ({reason})"
    return None
