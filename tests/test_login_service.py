"""Plug in and forget: `schedule --watch` makes `watch` a per-user service that starts at
login and is restarted if it dies (systemd on Linux, launchd on macOS), and `schedule
--every --launchd` gives macOS its timed backups. The systemd unit is checked by systemd
itself and its command run as systemd runs it; launchd cannot run here, so its plists are
checked against launchd.plist(5)'s keys and by plistlib round trips."""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import add_notes, build_phone_tree
from tests.conftest import free_port, run_cli, run_process
from tests.desktop import DesktopSession
from tests.test_schedule import log_lines

WAIT_S = 60


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def unit_sections(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current[key] = value
    return sections


@pytest.fixture
def desktop(monkeypatch):
    session = DesktopSession()
    session.start_bus()
    session.start_notification_server()
    yield session
    session.stop()


def test_the_watch_service_passes_systemds_own_check_and_backs_up_each_arrival_with_one_notification(
    desktop, tmp_path, archive, home
):
    tree = build_phone_tree(tmp_path / "sdcard", notes=4, seed=5, business=False, legacy=False, broken=False)
    address = f"127.0.0.1:{free_port()}"
    printed = run_cli("schedule", archive, "--watch", "--systemd", "--tcp", address)
    assert printed.exit_code == 0, printed.stderr
    heading, _, unit = printed.stdout.partition("\n")
    path = Path(heading.removeprefix("# "))
    assert path.parent == home / ".config" / "systemd" / "user" and path.name.startswith("adbvoice-watch-")

    # systemd's own reading of the unit, as the user manager would load it.
    checked = tmp_path / "units" / path.name
    checked.parent.mkdir()
    checked.write_text(unit)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    verify = subprocess.run(["systemd-analyze", "--user", "verify", str(checked)], capture_output=True, text=True,
                            env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)}, timeout=60)
    assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", "")
    service = unit_sections(unit)["Service"]
    assert service["Restart"] == "on-failure" and unit_sections(unit)["Install"]["WantedBy"] == "default.target"
    argv = shlex.split(service["ExecStart"])
    assert argv[:5] == [sys.executable, "-m", "adbvoice", "watch", str(archive)] and "--notify" in argv
    log = home / ".local" / "state" / "adbvoice" / "log" / "backup.log"
    assert argv[argv.index("--log-file") + 1] == str(log)

    # Run as systemd runs a user service: HOME, a bare PATH, the session's runtime folder
    # (where the session bus is), in HOME; looking every 0.1 s rather than 5 s, to be quick.
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(desktop.runtime), "LANG": "C.UTF-8"}
    service_process = subprocess.Popen([*argv, "--interval", "0.1", "-v"], env=env, cwd=home, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s=s, lines=lines: lines.extend(line.rstrip("\n") for line in s),
                                daemon=True)
               for s, lines in ((service_process.stdout, out), (service_process.stderr, err))]
    for reader in readers:
        reader.start()
    phone = EmulatedPhone(tree.root, port=int(address.split(":")[1]))
    try:
        expected = [4, 2, 3]
        for arrival, count in enumerate(expected, 1):
            if arrival > 1:
                add_notes(tree, count)
            looks_without = sum(1 for line in err if line.endswith("phones present: none"))
            wait_until(lambda: sum(1 for line in err if line.endswith("phones present: none")) > looks_without,
                       f"a look without the phone before arrival {arrival}")
            phone.start()
            wait_until(lambda: len(desktop.shown()) == arrival, f"notification {arrival}; {err}")
            wait_until(lambda: len(out) == arrival, f"backup line {arrival}")
            phone.stop()
        service_process.send_signal(signal.SIGTERM)
        assert service_process.wait(timeout=WAIT_S) == 0
    finally:
        if service_process.poll() is None:
            service_process.kill()
            service_process.wait()
        phone.stop()
        for reader in readers:
            reader.join(WAIT_S)

    shown = desktop.wait_shown(3)
    assert [n.summary for n in shown] == [f"Pixel 7 (EMU0001): {c} new voice notes saved" for c in expected]
    assert [f"{c} new voice notes" in line for line, c in zip(out, expected)] == [True] * 3 and len(out) == 3
    assert [line for line in err if line.startswith(("adbvoice:", "warning:", "Traceback"))] == []
    assert [(line["outcome"], line["new"]) for line in log_lines(log)] == [("ok", str(c)) for c in expected]


def test_the_timed_backups_units_pass_systemds_own_check_too(archive, tmp_path):
    printed = run_cli("schedule", archive, "--every", "15m", "--systemd").stdout
    folder = tmp_path / "units"
    folder.mkdir()
    for block in printed.split("# /")[1:]:
        heading, _, text = block.partition("\n")
        (folder / Path(heading).name).write_text(text.removesuffix("\n"))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    verify = subprocess.run(["systemd-analyze", "--user", "verify", *map(str, sorted(folder.iterdir()))],
                            capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
                            timeout=60)
    assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", "")
    assert len(list(folder.iterdir())) == 2


def test_installing_the_watch_service_writes_one_unit_and_uninstalling_removes_exactly_it(archive, tmp_path):
    xdg = tmp_path / "xdg"
    units = xdg / "systemd" / "user"
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg), "PATH": "/nonexistent"}  # no systemctl here
    timed = run_process("schedule", archive, "--every", "1h", "--systemd", "--install", env=env)
    assert timed.exit_code == 27
    before = sorted(p.name for p in units.iterdir())

    result = run_process("schedule", archive, "--watch", "--systemd", "--install", env=env)
    assert result.exit_code == 27 and result.stderr.count("\n") == 1
    (watch_unit,) = [p for p in units.iterdir() if p.name not in before]
    assert f"systemctl --user enable --now {watch_unit.name}" in result.stderr

    wants = units / "default.target.wants"  # what `systemctl --user enable` would have made
    wants.mkdir()
    (wants / watch_unit.name).symlink_to(watch_unit)
    removed = run_process("schedule", archive, "--watch", "--systemd", "--uninstall", env=env)
    assert removed.exit_code == 0 and str(watch_unit) in removed.stdout
    assert sorted(p.name for p in units.iterdir()) == sorted([*before, "default.target.wants"])
    assert list(wants.iterdir()) == []


# --- launchd --------------------------------------------------------------------------------

# launchd.plist(5): the keys a job may use, and the type of each we write.
LAUNCHD_KEYS = {"Label": str, "ProgramArguments": list, "RunAtLoad": bool, "KeepAlive": (bool, dict),
                "ThrottleInterval": int, "StartInterval": int, "StartCalendarInterval": (dict, list)}
CALENDAR_KEYS = {"Minute", "Hour", "Day", "Weekday", "Month"}


def printed_plist(*args: str) -> tuple[Path, dict]:
    result = run_cli("schedule", *args, "--launchd")
    assert result.exit_code == 0, result.stderr
    heading, _, text = result.stdout.partition("\n")
    job = plistlib.loads(text.encode())
    assert plistlib.loads(plistlib.dumps(job)) == job
    for key, value in job.items():
        assert isinstance(value, LAUNCHD_KEYS[key]), key
    for entry in [job.get("StartCalendarInterval", {})] if isinstance(job.get("StartCalendarInterval", {}), dict) \
            else job["StartCalendarInterval"]:
        assert set(entry) <= CALENDAR_KEYS and all(isinstance(v, int) for v in entry.values())
    return Path(heading.removeprefix("# ")), job


def test_launchd_agents_keep_watch_running_from_login_and_run_timed_backups_at_crons_times(archive, home):
    path, job = printed_plist(archive, "--watch", "--tcp", "10.0.0.5")
    assert path == home / "Library" / "LaunchAgents" / f"{job['Label']}.plist"
    assert job["Label"].startswith("org.adbvoice.watch.")
    assert job["RunAtLoad"] is True and job["KeepAlive"] == {"SuccessfulExit": False}
    assert job["ProgramArguments"][:5] == [sys.executable, "-m", "adbvoice", "watch", str(archive)]
    assert "--notify" in job["ProgramArguments"] and "10.0.0.5" in job["ProgramArguments"]

    timed = {every: printed_plist(archive, "--every", every)[1] for every in ("15m", "1h", "6h", "1d")}
    assert timed["15m"]["StartInterval"] == 900 and "StartCalendarInterval" not in timed["15m"]
    assert timed["1h"]["StartCalendarInterval"] == {"Minute": 0}
    assert timed["6h"]["StartCalendarInterval"] == [{"Hour": h, "Minute": 0} for h in (0, 6, 12, 18)]
    assert timed["1d"]["StartCalendarInterval"] == {"Hour": 3, "Minute": 0}
    assert timed["1d"]["Label"].startswith("org.adbvoice.backup.") and "RunAtLoad" not in timed["1d"]
    assert timed["1d"]["ProgramArguments"][3:7] == ["backup", str(archive), "--if-present", "--quiet"]


def test_launchd_install_writes_the_agent_says_what_to_run_and_uninstall_removes_exactly_it(archive, home):
    agents = home / "Library" / "LaunchAgents"
    agents.mkdir(parents=True)
    (agents / "com.example.mine.plist").write_bytes(plistlib.dumps({"Label": "com.example.mine"}))
    env = {**os.environ, "PATH": "/nonexistent"}  # launchd is macOS's: no launchctl here
    assert shutil.which("launchctl") is None

    result = run_process("schedule", archive, "--watch", "--launchd", "--install", env=env)
    assert result.exit_code == 27 and result.stderr.count("\n") == 1
    (agent,) = agents.glob("org.adbvoice.watch.*.plist")
    assert f"launchctl bootstrap gui/$(id -u) {agent}" in result.stderr
    assert plistlib.loads(agent.read_bytes())["RunAtLoad"] is True

    assert run_process("schedule", archive, "--every", "1d", "--launchd", "--install", env=env).exit_code == 27
    removed = run_process("schedule", archive, "--watch", "--launchd", "--uninstall", env=env)
    assert removed.exit_code == 0 and str(agent) in removed.stdout
    assert sorted(p.name for p in agents.iterdir()) == sorted(
        ["com.example.mine.plist", *(p.name for p in agents.glob("org.adbvoice.backup.*.plist"))])
    assert len(list(agents.glob("org.adbvoice.backup.*.plist"))) == 1


@pytest.mark.parametrize("args", [["--watch", "--cron"], ["--watch", "--every", "1h", "--systemd"],
                                  ["--every", "1h", "--systemd", "--launchd"]])
def test_a_watch_is_a_service_and_takes_no_interval(archive, args):
    result = run_cli("schedule", archive, *args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
