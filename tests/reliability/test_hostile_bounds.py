"""A phone that attacks the computer — over --tcp, anyone who takes the phone's address is
"the phone" — cannot make a backup hold gigabytes, run forever or fill the disk: each
attack ends the run with its own exit code and a one-line message, within a stated time
and under a stated peak memory (the process's VmHWM, read from /proc while it runs), and
the archive keeps exactly the notes it held."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pytest

from adbvoice.emulator import EmulatedPhone, Faults
from adbvoice.emulator.hostile import AFTER_CNXN, BEFORE_CNXN, HostilePhone, Hostility
from adbvoice.emulator.phonetree import build_phone_tree
from tests.conftest import EXIT_CODES_SEEN, archived_files, run_cli

MB = 1 << 20


@dataclass(frozen=True)
class Watched:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float  # VmHWM: the most memory the process ever held


def run_watched(*args: object, timeout: float = 120) -> Watched:
    """The CLI as a real process, its peak resident memory read from /proc/PID/status."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "adbvoice", *map(str, args)], stdout=out, stderr=err)
        peak_kb = 0
        while process.poll() is None:
            peak_kb = max(peak_kb, _vm_hwm_kb(process.pid))
            if time.monotonic() - started > timeout:
                process.kill()
                process.wait()
                pytest.fail(f"the run did not end within {timeout} s")
            time.sleep(0.01)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        EXIT_CODES_SEEN.add(process.returncode)
        return Watched(process.returncode, out.read(), err.read(), seconds, peak_kb / 1024)


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("adbvoice: ") and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def tree(tmp_path):
    return build_phone_tree(tmp_path / "sdcard", notes=4, business=False, legacy=False, broken=False, audio=False)


@dataclass(frozen=True)
class Attack:
    hostility: Hostility
    code: int
    said: str  # in the message
    seconds: float  # the run ends within this
    peak_mb: float  # and holds at most this much memory
    args: tuple[str, ...] = ()
    fresh: bool = False  # an archive never backed up: the phone's whole listing is asked for


ATTACKS = {
    # 0xF0000000 bytes claimed: 3.97 GB were allocated for it before the length was checked.
    "a huge length before the handshake": Attack(Hostility(huge_header=BEFORE_CNXN), 65, "4,026,531,840 bytes", 10, 150),
    "a huge length after the handshake": Attack(Hostility(huge_header=AFTER_CNXN), 65, "4,026,531,840 bytes", 10, 150),
    # The listing is capped at 128 MiB (scripts.LISTING_MAX): held once as it arrives, once parsed.
    "endless shell output": Attack(Hostility(endless_shell=True), 66, "more than 134,217,728 bytes", 60, 450,
                                   fresh=True),
    "endless output ignoring flow control": Attack(Hostility(endless_shell=True, ignore_flow_control=True), 66,
                                                   "ignored flow control", 10, 150, fresh=True),
    # A byte every 0.2 s is progress to the I/O timeout; listing's deadline (20 I/O timeouts) is not moved.
    "a listing trickled a byte at a time": Attack(Hostility(trickle_s=0.2), 67, "listing the phone did not finish",
                                                  25, 150, ("--io-timeout", "0.5")),
    # Messages for a stream that does not exist keep no request alive.
    "chatter on no stream while the answer never comes": Attack(Hostility(chatter_s=0.2), 17, "no answer", 10, 150,
                                                                ("--io-timeout", "1")),
    # The handshake has one deadline, the I/O timeout, however its bytes dribble in.
    "a handshake a byte at a time": Attack(Hostility(handshake_trickle_s=0.2), 16, "not answering", 10, 150,
                                           ("--io-timeout", "1")),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_a_hostile_phone_ends_the_run_with_its_code_in_bounded_time_and_memory(name, tree, tmp_path, figures):
    attack = ATTACKS[name]
    archive = tmp_path / "archive"
    with EmulatedPhone(tree.root) as phone:
        if not attack.fresh:
            assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0
        before = archived_files(archive) if archive.exists() else {}
        with HostilePhone(phone, attack.hostility) as hostile:
            run = run_watched("backup", archive, "--tcp", hostile.address, *attack.args)
            fired = sum(hostile.fired.values())
    after = archived_files(archive) if archive.exists() else {}
    leftovers = list((archive / ".adbvoice" / "tmp").iterdir()) if (archive / ".adbvoice" / "tmp").exists() else []
    figures.row("Hostile phones").case(fired=fired > 0, lost=len(set(before) - set(after)), partial=len(leftovers))

    assert fired, hostile.fired
    assert run.exit_code == attack.code, run.stderr
    assert attack.said in one_line(run.stderr)
    assert run.seconds < attack.seconds, run.seconds
    assert run.peak_mb < attack.peak_mb, run.peak_mb
    assert after == before and leftovers == []


def test_a_phone_sending_far_more_than_it_listed_cannot_fill_the_disk(tmp_path, figures):
    """A note listed at 3 KB whose RECV goes on for 400 MB (a sparse file, so the test
    costs no disk): the copy stops at the listed size plus 1 MiB, the note counts as still
    changing, the other notes are archived."""
    tree = build_phone_tree(tmp_path / "sdcard", notes=4, business=False, legacy=False, broken=False, audio=False)
    liar = next(n for n in tree.notes if n.kind == "voice" and n.is_note)
    with open(liar.local_path, "r+b") as handle:
        handle.truncate(400 * MB)
    archive = tmp_path / "archive"
    # Listed over sync (no shell): the phone's LIST and STAT answers are what the backup believes.
    with EmulatedPhone(tree.root, shell=False, faults=Faults(lie_size_paths=liar.phone_path, lie_size=3000)) as phone:
        run = run_watched("backup", archive, "--tcp", phone.address, "--json")
        served = phone.file_bytes_sent
        lies = phone.faults_fired["lie_size"]
    files = archived_files(archive)
    figures.row("Hostile phones").case(fired=lies > 0, lost=0, partial=len(list((archive / ".adbvoice/tmp").iterdir())))

    assert lies > 0
    assert run.exit_code == 3, run.stderr
    assert f"{liar.phone_path}: kept changing while being copied" in run.stdout
    assert len(files) == 3 and liar.sha256 not in set(files)
    assert served < 3 * 8 * MB, served  # three attempts, each stopped a little past 1 MiB
    assert run.seconds < 30 and run.peak_mb < 150, (run.seconds, run.peak_mb)
    assert list((archive / ".adbvoice" / "tmp").iterdir()) == []


def test_a_prune_through_a_trickling_phone_ends_at_its_deadline_and_deletes_nothing(tree, tmp_path, figures):
    archive = tmp_path / "archive"
    with EmulatedPhone(tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0
        before = {p: p.read_bytes() for p in tree.root.rglob("*.opus")}
        with HostilePhone(phone, Hostility(trickle_s=0.2)) as hostile:
            run = run_watched("prune", archive, "--tcp", hostile.address, "--older-than", "0d", "--yes",
                              "--io-timeout", "0.5")
            fired = hostile.fired["trickle"]
    figures.row("Hostile phones").case(fired=fired > 0, lost=0, partial=0)

    assert fired
    assert run.exit_code == 67, run.stderr
    assert "did not finish within 10 s" in one_line(run.stderr)
    assert run.seconds < 40 and run.peak_mb < 150, (run.seconds, run.peak_mb)
    assert {p: p.read_bytes() for p in tree.root.rglob("*.opus")} == before
