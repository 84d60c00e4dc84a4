"""`schedule`: a crontab line, a systemd user timer or a launchd agent that runs the backup
unattended; or, with `--watch`, a per-user service (systemd or launchd) that runs `watch`
from login, restarted if it dies.

The job must work where nothing of this shell survives: cron starts it with
HOME, SHELL and PATH=/usr/bin:/bin only, from HOME. So it names this very interpreter by
its absolute path (`python -m adbvoice`, the installation that is running now, a venv
included), the archive and the log file by absolute paths, and carries every setting
that is not a default (a flag, an ADBVOICE_ variable or the config file now) as a flag.
It runs `backup --if-present --quiet`: silent when the phone is away or all went well,
so cron mails only trouble; the archive's lock keeps runs from overlapping.

Each archive has at most one job of each kind (timed, watching), found again by a marker
(a comment line before the crontab entry; a comment heading each unit file and plist), so
installing again replaces it and `--uninstall` removes exactly what was installed.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
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
WATCH_MARKER = "# Installed by `adbvoice schedule --watch`; `adbvoice schedule --watch --systemd --uninstall` removes it."


@dataclass(frozen=True)
class Every:
    text: str
    cron: str  # crontab's five time fields
    calendar: str  # systemd.time OnCalendar=
    seconds: int  # the period


def parse_every(text: str) -> Every:
    """15m, 1h, 1d...: minutes dividing an hour, hours dividing a day, or daily (at 03:00,
    when phones are usually at home and charging), so every run is evenly spaced."""
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    number, unit = (int(match[1]), match[2]) if match else (0, "")
    step = "*" if number == 1 else f"*/{number}"
    if unit == "m" and number and 60 % number == 0 and number < 60:
        return Every(text, f"{step} * * * *", f"*:00/{number}", number * 60)
    if unit == "h" and number and 24 % number == 0 and number < 24:
        return Every(text, f"0 {step} * * *", f"00/{number}:00", number * 3600)
    if (unit, number) in (("d", 1), ("h", 24)):
        return Every(text, "0 3 * * *", "*-*-* 03:00:00", 86400)
    raise errors.UsageError(
        f"--every {text!r}: use minutes that divide an hour (5m, 10m, 15m, 30m), hours that divide a day "
        "(1h, 2h, 3h, 4h, 6h, 8h, 12h), or 1d"
    )


def backup_command(settings: Settings, log_file: Path) -> list[str]:
    """The scheduled backup's argv: absolute interpreter, archive and log; no environment needed."""
    argv = _command(settings, "backup", log_file, ["--if-present", "--quiet"])
    if settings["transcribe"]:  # `watch` reads it from the settings: only backup takes the flag
        argv.append("--transcribe")
    return argv + ["--notify"] if settings["notify"] and not settings["notify_always"] else argv


def watch_command(settings: Settings, log_file: Path) -> list[str]:
    """The watching service's argv: as a scheduled backup's, and notifying unless the
    settings say `notify = false` (a watch is for plugging in and walking away)."""
    argv = _command(settings, "watch", log_file, [])
    off = settings.source("notify") != FROM_DEFAULT and not settings["notify"]
    return argv if off or settings["notify_always"] else argv + ["--notify"]


def _command(settings: Settings, command: str, log_file: Path, options: list[str]) -> list[str]:
    archive = str(settings["archive"])
    if "\n" in archive or "\n" in str(log_file):
        raise errors.UsageError("the archive and log file paths cannot be scheduled: they contain a line break")
    argv = [str(Path(sys.executable).absolute()), "-m", "adbvoice", command, archive,
            *options, "--log-file", str(log_file)]
    for name, flag in _FLAGS.items():
        if settings.source(name) != FROM_DEFAULT and settings[name] is not None:
            argv += [flag, str(settings[name])]
    if settings["include_audio"]:
        argv.append("--include-audio")
    if settings["notify_always"]:
        argv.append("--notify-always")
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


def archive_id(archive: Path) -> str:
    """8 hex digits naming the archive's jobs, stable across runs."""
    return hashlib.sha256(str(archive).encode()).hexdigest()[:8]


def unit_name(archive: Path, kind: str = "backup") -> str:
    """adbvoice-backup-<id> (the timer and its service) or adbvoice-watch-<id>."""
    return f"adbvoice-{kind}-{archive_id(archive)}"


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
        "# 3: completed with warnings, every new note archived; the warnings are in the journal,\n"
        "# and each is told once. 22: another adbvoice run held the archive, so this one\n"
        "# stepped aside as designed.\n"
        "SuccessExitStatus=3 22\n"
    )
    timer = (
        f"{UNIT_MARKER}\n[Unit]\nDescription={what}, every {every.text}\n\n"
        f"[Timer]\nOnCalendar={every.calendar}\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def watch_unit(archive: Path, argv: list[str]) -> dict[str, str]:
    """The watching service, by file name: started with the user's session, restarted if it dies."""
    what = _escape_specifiers(f"adbvoice: back up WhatsApp voice notes into {archive} whenever a phone arrives")
    service = (
        f"{WATCH_MARKER}\n[Unit]\nDescription={what}\n\n"
        f"[Service]\nExecStart={' '.join(_systemd_word(a) for a in argv)}\n"
        "# Restarted when it dies (not when stopped): say, an archive on a disk not mounted yet.\n"
        "Restart=on-failure\nRestartSec=30\n"
        "# 130: stopped (systemctl stop, the session ending) during a backup, which it ended cleanly.\n"
        "SuccessExitStatus=130\n\n"
        "[Install]\nWantedBy=default.target\n"
    )
    return {f"{unit_name(archive, 'watch')}.service": service}


def _escape_specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _systemd_word(arg: str) -> str:
    """One ExecStart= word (systemd.service(5), "Command lines"): %-specifiers and $-variables
    are escaped; a word with spaces, quotes or backslashes is double-quoted."""
    arg = _escape_specifiers(arg).replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def install_systemd(units: dict[str, str], start: str) -> list[Path]:
    """Write the units and enable (and start) `start`; ScheduleError (units left written,
    the commands to finish named) when systemctl is missing or has no user session."""
    folder = user_unit_folder()
    written = [_write_replacing(folder / filename, text, "the systemd units") for filename, text in units.items()]
    for args in (["daemon-reload"], ["enable", "--now", start]):
        problem = _systemctl(*args)
        if problem:
            raise errors.ScheduleError(
                f"wrote {', '.join(map(str, written))}, but {problem}: in your desktop session run "
                f"`systemctl --user daemon-reload && systemctl --user enable --now {start}`"
            )
    return written


def uninstall_systemd(archive: Path, *, watch: bool = False) -> list[Path]:
    """Stop and remove this archive's timer and service (or its watching service), only
    if they carry our marker."""
    folder = user_unit_folder()
    if watch:
        name, marker = unit_name(archive, "watch"), WATCH_MARKER
        started, target, files = f"{name}.service", "default.target", [f"{name}.service"]
    else:
        name, marker = unit_name(archive), UNIT_MARKER
        started, target, files = f"{name}.timer", "timers.target", [f"{name}.timer", f"{name}.service"]
    ours = [folder / f for f in files if _is_ours(folder / f, marker)]
    if not ours:
        return []
    _systemctl("disable", "--now", started)
    # What `systemctl enable` made, should systemctl be unable to undo it now.
    wanted = folder / f"{target}.wants" / started
    if wanted.is_symlink():
        wanted.unlink()
    for path in ours:
        path.unlink()
    _systemctl("daemon-reload")
    return ours


def _write_replacing(path: Path, text: str, what: str) -> Path:
    """Write a file whole or not at all: a temp file renamed over the old one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(text)
        os.replace(temp, path)
    except OSError as exc:
        raise errors.ScheduleError(f"cannot write {what} in {path.parent}: {exc.strerror or exc}") from exc
    return path


def _is_ours(path: Path, marker: str) -> bool:
    try:
        return path.read_text().startswith(marker)
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


# --- launchd (macOS) ------------------------------------------------------------------------

# An XML comment may not hold "--" (XML 1.0, section 2.5), so the option is not spelled out.
LAUNCHD_MARKER = "<!-- Installed by `adbvoice schedule`; the same command with its uninstall option removes it. -->"


def launchd_label(archive: Path, kind: str = "backup") -> str:
    """org.adbvoice.backup.<id> or org.adbvoice.watch.<id>: the job's name, and its plist's."""
    return f"org.adbvoice.{kind}.{archive_id(archive)}"


def launch_agents_folder() -> Path:
    """Where launchd loads a user's own agents from at login (launchd.plist(5))."""
    return Path.home() / "Library" / "LaunchAgents"


def launchd_plist(label: str, argv: list[str], every: Every | None) -> str:
    """A LaunchAgent: run every `every`, or (None) keep `watch` running from login.

    Minutes become StartInterval (seconds from load); hours and days StartCalendarInterval
    at the same clock times as cron's, which launchd also runs once after the Mac wakes
    when it slept through one (as systemd's Persistent=true does)."""
    job: dict[str, object] = {"Label": label, "ProgramArguments": argv}
    if every is None:
        # Started at load (login), started again if it exits with an error, not after a clean exit.
        job.update(RunAtLoad=True, KeepAlive={"SuccessfulExit": False}, ThrottleInterval=30)
    elif every.seconds < 3600:
        job["StartInterval"] = every.seconds
    elif every.seconds == 86400:
        job["StartCalendarInterval"] = {"Hour": 3, "Minute": 0}
    elif every.seconds == 3600:
        job["StartCalendarInterval"] = {"Minute": 0}
    else:
        job["StartCalendarInterval"] = [{"Hour": hour, "Minute": 0} for hour in range(0, 24, every.seconds // 3600)]
    text = plistlib.dumps(job, sort_keys=False).decode()
    head, _, rest = text.partition("<plist")
    return f"{head}{LAUNCHD_MARKER}\n<plist{rest}"


def install_launchd(label: str, text: str) -> Path:
    """Write the agent and load it into this user's GUI session, replacing a loaded one;
    ScheduleError (the plist left written, the command named) without launchctl."""
    path = _write_replacing(launch_agents_folder() / f"{label}.plist", text, "the launchd agent")
    domain = f"gui/{os.getuid()}"
    _launchctl("bootout", f"{domain}/{label}")  # not loaded yet is fine
    problem = _launchctl("bootstrap", domain, str(path))
    if problem:
        raise errors.ScheduleError(
            f"wrote {path}, but {problem}: on your Mac run `launchctl bootstrap gui/$(id -u) {shlex.quote(str(path))}`"
        )
    return path


def uninstall_launchd(label: str) -> list[Path]:
    """Unload and remove the agent, only if it carries our marker."""
    path = launch_agents_folder() / f"{label}.plist"
    try:
        ours = LAUNCHD_MARKER in path.read_text()
    except OSError:
        ours = False
    if not ours:
        return []
    _launchctl("bootout", f"gui/{os.getuid()}/{label}")
    path.unlink()
    return [path]


def _launchctl(*args: str) -> str | None:
    """Run `launchctl ARGS`; what went wrong, or None."""
    program = shutil.which("launchctl")
    if program is None:
        return "launchctl is not available here (launchd is macOS's)"
    result = subprocess.run([program, *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[0]
        return f"`launchctl {' '.join(args)}` failed ({reason})"
    return None
