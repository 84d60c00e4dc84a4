"""A person sets up a nightly backup once and forgets it: the job runs in cron's bare
environment, says nothing when the phone is away or all is well, never overlaps another
run, and leaves one line per run in a log that never grows without limit."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from adbvoice.archive.folder import Archive
from adbvoice.unattended.runlog import MAX_BYTES
from tests.conftest import archived_files, free_port, run_cli, run_process


def expected_count(tree) -> int:
    return sum(1 for n in tree.notes if n.is_note and n.kind != "audio")


def log_lines(path: Path) -> list[dict[str, str]]:
    """Each line of the log as its fields (values unquoted), the time as `time`."""
    found = []
    for line in path.read_text().splitlines():
        stamp, _, rest = line.partition(" ")
        fields = {"time": stamp}
        for word in shlex.split(rest):
            key, _, value = word.partition("=")
            fields[key] = value
        found.append(fields)
    return found


def run_like_cron(command: str, home: Path) -> subprocess.CompletedProcess:
    """What cron does with a crontab line's command: /bin/sh, HOME, PATH=/usr/bin:/bin, in HOME."""
    return subprocess.run(["/bin/sh", "-c", command], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                          cwd=home, capture_output=True, text=True, timeout=120)


def test_the_printed_cron_line_backs_up_in_crons_bare_environment_and_is_silent_without_the_phone(
    phone, phone_tree, archive, home, tmp_path
):
    log = tmp_path / "logs" / "backup.log"
    printed = run_cli("schedule", archive, "--every", "15m", "--tcp", phone.address, "--cron", "--log-file", log)
    assert printed.exit_code == 0, printed.stderr
    line = printed.stdout.strip()
    minute, hour, day, month, weekday, command = line.split(maxsplit=5)
    assert (minute, hour, day, month, weekday) == ("*/15", "*", "*", "*", "*")
    assert command.startswith(f"{sys.executable} -m adbvoice backup {shlex.quote(str(archive))} --if-present")

    ran = run_like_cron(command, home)
    assert ran.returncode == 3  # warnings: the phone's broken notes, and cron mails why (issue 19)
    assert ran.stdout.endswith(", 0 already archived, 3 warnings\n") and ran.stderr.count("unreadable") == 3
    assert len(archived_files(archive)) == expected_count(phone_tree)

    phone.stop()
    away = run_like_cron(command, home)
    assert (away.returncode, away.stdout, away.stderr) == (0, "", "")

    first, second = log_lines(log)
    assert first["outcome"] == "warnings" and first["exit"] == "3" and first["device"] == "Pixel 7 (EMU0001)"
    assert first["new"] == str(expected_count(phone_tree)) and first["archive"] == str(archive)
    assert first["duration"].endswith("s")
    assert second["outcome"] == "absent" and second["exit"] == "0" and second["device"] == f"tcp {phone.address}"


def test_every_setting_that_is_not_a_default_travels_in_the_scheduled_command(tmp_path, home, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "adbvoice").mkdir(parents=True)
    (tmp_path / "xdg" / "adbvoice" / "config.toml").write_text('include_audio = true\nserial = "R58"\nnotify = true\n')
    monkeypatch.setenv("ADBVOICE_LAYOUT", "{device}/{name}")
    printed = run_cli("schedule", "--every", "1d", "--cron").stdout.strip()
    argv = shlex.split(printed.split(maxsplit=5)[5])
    assert printed.startswith("0 3 * * * ")
    assert argv[:6] == [sys.executable, "-m", "adbvoice", "backup", str(home / "WhatsApp Voice Notes"), "--if-present"]
    assert argv[argv.index("--log-file") + 1] == str(home / ".local" / "state" / "adbvoice" / "log" / "backup.log")
    assert argv[argv.index("--layout") + 1] == "{device}/{name}"
    assert argv[argv.index("--serial") + 1] == "R58" and "--include-audio" in argv and "--notify" in argv
    assert "--tcp" not in argv and "--adb-key" not in argv


@pytest.mark.parametrize("every", ["7m", "60m", "5h", "2d", "often", "0m"])
def test_an_interval_cron_cannot_keep_evenly_is_refused(archive, every):
    result = run_cli("schedule", archive, "--every", every, "--cron")
    assert result.exit_code == 2 and "15m" in result.stderr and result.stderr.count("\n") == 1


def test_schedule_needs_exactly_one_kind_of_job(archive):
    for args in ([], ["--cron", "--systemd"]):
        result = run_cli("schedule", archive, "--every", "1h", *args)
        assert result.exit_code == 2 and "--cron" in result.stderr


# --- installing for real, in a private crontab -------------------------------------------------


@pytest.fixture
def private_cron(tmp_path):
    """Debian's real crontab, but writing a spool folder of this test's own: the CLI runs in a
    mount namespace (bubblewrap) where /var/spool/cron/crontabs is that folder."""
    spool = tmp_path / "crontabs"
    spool.mkdir()
    os.chmod(spool, 0o1730)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--bind", str(spool), "/var/spool/cron/crontabs", *args],
            capture_output=True, text=True, timeout=120,
        )

    assert run("crontab", "-l").returncode == 1, "Debian's cron and bubblewrap are needed: run .ci/install-tools"
    return run


def test_install_adds_one_job_per_archive_and_uninstall_removes_exactly_it(private_cron, tmp_path):
    mine = "MAILTO=me@example.org\n30 2 * * * /usr/local/bin/my-own-job --flag\n"
    assert private_cron("sh", "-c", f"printf '{mine}' | crontab -").returncode == 0
    adbvoice = [sys.executable, "-m", "adbvoice", "schedule"]
    first, second = tmp_path / "voice", tmp_path / "other voice"

    installed = private_cron(*adbvoice, first, "--every", "1h", "--cron", "--install")
    assert installed.returncode == 0, installed.stderr
    private_cron(*adbvoice, first, "--every", "30m", "--cron", "--install")  # replaces the first job
    private_cron(*adbvoice, second, "--every", "1d", "--tcp", "10.0.0.5", "--cron", "--install")
    crontab = private_cron("crontab", "-l").stdout
    jobs = [line for line in crontab.splitlines() if " -m adbvoice backup " in line]
    assert len(jobs) == 2
    assert jobs[0].startswith("*/30 * * * * ") and shlex.quote(str(first)) in jobs[0]
    assert jobs[1].startswith("0 3 * * * ") and shlex.quote(str(second)) in jobs[1] and "--tcp 10.0.0.5" in jobs[1]
    assert crontab.startswith(mine)

    removed = private_cron(*adbvoice, first, "--cron", "--uninstall")
    assert removed.returncode == 0 and str(first) in removed.stdout
    assert " -m adbvoice backup " + shlex.quote(str(first)) not in private_cron("crontab", "-l").stdout
    private_cron(*adbvoice, second, "--cron", "--uninstall")
    assert private_cron("crontab", "-l").stdout == mine

    again = private_cron(*adbvoice, second, "--cron", "--uninstall")
    assert again.returncode == 0 and "nothing was scheduled" in again.stdout


def test_without_crontab_install_says_how_to_get_it(archive):
    result = run_process("schedule", archive, "--every", "1h", "--cron", "--install",
                         env={**os.environ, "PATH": "/nonexistent"})
    assert result.exit_code == 27 and "apt install cron" in result.stderr


# --- systemd ----------------------------------------------------------------------------------


def test_systemd_units_are_written_to_the_users_folder_and_removed_exactly(archive, tmp_path):
    xdg = tmp_path / "xdg"
    units = xdg / "systemd" / "user"
    units.mkdir(parents=True)
    (units / "mine.service").write_text("[Service]\nExecStart=/bin/true\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg), "PATH": "/nonexistent"}  # no systemctl here

    printed = run_process("schedule", archive, "--every", "15m", "--systemd", env=env)
    assert printed.exit_code == 0 and list(units.iterdir()) == [units / "mine.service"]

    result = run_process("schedule", archive, "--every", "15m", "--systemd", "--install", env=env)
    assert result.exit_code == 27
    assert "systemctl is not available" in result.stderr and "systemctl --user enable --now" in result.stderr
    service, timer = sorted(units.glob("adbvoice-backup-*"))
    assert printed.stdout == f"# {service}\n{service.read_text()}\n# {timer}\n{timer.read_text()}\n"
    exec_start = next(line for line in service.read_text().splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith(f"ExecStart={sys.executable} -m adbvoice backup {archive} --if-present --quiet")
    assert "OnCalendar=*:00/15" in timer.read_text() and "WantedBy=timers.target" in timer.read_text()

    # What `systemctl enable` would have added is removed too; the user's own unit stays.
    wants = units / "timers.target.wants"
    wants.mkdir()
    (wants / timer.name).symlink_to(timer)
    removed = run_process("schedule", archive, "--systemd", "--uninstall", env=env)
    assert removed.exit_code == 0 and str(timer) in removed.stdout
    assert sorted(p.name for p in units.rglob("*")) == ["mine.service", "timers.target.wants"]


def test_systemd_install_without_a_user_session_says_what_to_run(archive, tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent",
           "XDG_RUNTIME_DIR": str(tmp_path / "no-runtime")}
    result = run_process("schedule", archive, "--every", "1h", "--systemd", "--install", env=env)
    assert result.exit_code == 27
    assert "systemctl --user" in result.stderr and "enable --now" in result.stderr
    assert result.stderr.count("\n") == 1


# --- one run at a time, and quiet when the phone is away -----------------------------------------


def test_a_scheduled_run_finding_the_archive_locked_exits_22_silently(phone, archive, tmp_path):
    log = tmp_path / "backup.log"
    with Archive.open(archive, create=True).lock():
        quiet = run_process("backup", archive, "--tcp", phone.address, "--if-present", "--quiet", "--log-file", log)
        loud = run_process("backup", archive, "--tcp", phone.address)
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (22, "", "")
    assert loud.exit_code == 22 and "in use by" in loud.stderr
    assert phone.connections_accepted == 1  # the quiet run's look; neither run connected further
    (line,) = log_lines(log)
    assert line["outcome"] == "locked" and line["exit"] == "22" and "in use by" in line["message"]


def test_if_present_with_no_phone_touches_nothing_and_says_nothing(archive, tmp_path):
    for where in (["--tcp", f"127.0.0.1:{free_port()}"], []):  # Wi-Fi, and USB
        result = run_cli("backup", archive, *where, "--if-present")
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert not archive.exists()


def test_the_log_file_never_grows_past_its_bound(phone, archive, tmp_path):
    log = tmp_path / "backup.log"
    filler = "x" * 99 + "\n"
    log.write_text(filler * (MAX_BYTES // len(filler)))
    (tmp_path / "backup.log.1").write_text("the previous rotation\n")

    assert run_cli("backup", archive, "--tcp", phone.address, "--log-file", log).exit_code == 3
    assert (tmp_path / "backup.log.1").read_text().startswith(filler)
    assert [line["outcome"] for line in log_lines(log)] == ["warnings"]
    assert run_cli("backup", archive, "--tcp", phone.address, "--log-file", log).exit_code == 0
    assert [line["outcome"] for line in log_lines(log)] == ["warnings", "ok"]
    assert log.stat().st_size + (tmp_path / "backup.log.1").stat().st_size <= 2 * MAX_BYTES


def test_a_log_file_that_cannot_be_written_stops_the_run_before_it_starts(phone, archive, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("backup", archive, "--tcp", phone.address, "--log-file", blocker / "backup.log")
    assert result.exit_code == 28 and str(blocker) in result.stderr
    assert phone.connections_accepted == 0 and not archive.exists()
