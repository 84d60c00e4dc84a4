"""What Google's own adb device tests (AOSP test_device.py, run by .ci/aosp-device-tests)
ask of a phone, held here for CI, which cannot run the fetched suite: each test drives
the emulated phone through Google's adb, 29 and 36, as the suite does."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from tests.emulator.helpers import Adb, free_port

TMP = "/data/local/tmp"


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedPhone]:
    """One phone for the module: the suite, too, runs against one device."""
    root = tmp_path_factory.mktemp("sdcard")
    with EmulatedPhone(root) as phone:
        yield phone


@pytest.fixture
def sh(adb: Adb, device: EmulatedPhone) -> Iterator[Adb]:
    adb.connect(device)
    yield adb
    adb.disconnect(device)


def shell(adb: Adb, phone: EmulatedPhone, command: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return adb.run("-s", phone.address, "shell", command, **kwargs)  # type: ignore[arg-type]


def test_the_shell_user_makes_files_in_data_local_tmp_with_dd(sh: Adb, device: EmulatedPhone, tmp_path: Path) -> None:
    made = shell(sh, device, f"dd if=/dev/urandom of={TMP}/random bs=1024 count=3 && ls -ld {TMP}; id -un")
    assert made.returncode == 0, made
    assert made.stderr == b"3+0 records in\n3+0 records out\n" + made.stderr.splitlines(keepends=True)[2]
    assert made.stdout.split()[0] == b"drwxrwx--x" and made.stdout.endswith(b"shell\n")
    pulled = sh.run("-s", device.address, "pull", f"{TMP}/random", str(tmp_path / "random"))
    assert pulled.returncode == 0, pulled
    phone_md5 = shell(sh, device, f"md5sum {TMP}/random").stdout.split()[0].decode()
    assert hashlib.md5((tmp_path / "random").read_bytes()).hexdigest() == phone_md5
    # test_packet_size_regression: output lengths around 512 * n and max payload.
    for length in (506, 507, 508, 1019, 4091, 4096, 16379, 1024 * 1024 - 5):
        out = shell(sh, device, f"dd if=/dev/zero bs={length} count=1 2>/dev/null; echo foo")
        assert (out.returncode, out.stdout) == (0, b"\0" * length + b"foo\n")
    # toybox's size suffixes, and status=none, as test_socket_flush uses them.
    assert shell(sh, device, "dd if=/dev/zero bs=1m count=1 status=none | wc -c").stdout == b"1048576\n"


def test_getprop_lists_every_property_and_the_shell_sets_debug_ones(sh: Adb, device: EmulatedPhone) -> None:
    listing = shell(sh, device, "getprop").stdout.decode().splitlines()
    assert "[init.svc.adbd]: [running]" in listing and "[ro.debuggable]: [0]" in listing
    assert all(line.startswith("[") and "]: [" in line and line.endswith("]") for line in listing)
    assert listing == sorted(listing)
    assert shell(sh, device, "getprop init.svc.adbd").stdout == b"running\n"
    assert shell(sh, device, "setprop debug.conformance 0.25 && getprop debug.conformance").stdout == b"0.25\n"
    assert shell(sh, device, 'setprop debug.conformance ""; getprop debug.conformance fallback').stdout == b"fallback\n"
    refused = shell(sh, device, "setprop ro.debuggable 1")
    assert refused.returncode == 1
    assert refused.stderr == b"Failed to set property 'ro.debuggable' to '1'.\nSee dmesg for error reason.\n"
    assert shell(sh, device, "getprop ro.debuggable").stdout == b"0\n"


def test_abb_and_shell_cmd_answer_alike(sh: Adb, device: EmulatedPhone) -> None:
    abb = sh.run("-s", device.address, "abb")
    cmd = shell(sh, device, "cmd")
    assert (abb.stdout, abb.stderr) == (cmd.stdout, cmd.stderr) == (
        b"", b"cmd: No service specified; use -l to list all services\n")
    assert abb.returncode != 0 and cmd.returncode == 20
    assert sh.run("-s", device.address, "abb", "-l").stdout == b"Currently running services:\n"
    assert device.log.services()[-1].startswith("abb:-l")  # adbd's own service, not a shell


def test_a_shell_the_host_hangs_up_on_gets_sighup_and_shells_see_each_other(sh: Adb, device: EmulatedPhone) -> None:
    log = f"{TMP}/signal.log"
    script = (f'trap "echo SIGINT > {log}; exit 0" SIGINT; trap "echo SIGHUP > {log}; exit 0" SIGHUP; '
              "echo Waiting; read")
    proc = subprocess.Popen([sh.binary, "-s", device.address, "shell", script], env=sh.env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"Waiting\n"
    proc.send_signal(signal.SIGINT)  # adb closes the stream; adbd hangs up the shell
    proc.wait(10)
    proc.stdout.close()
    assert proc.stdin is not None
    proc.stdin.close()
    deadline = time.monotonic() + 5
    while shell(sh, device, f"cat {log}").stdout != b"SIGHUP\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shell(sh, device, f"cat {log}").stdout == b"SIGHUP\n"
    # One kernel for all: a process one shell started, another shell lists and kills.
    sleeper = subprocess.Popen([sh.binary, "-s", device.address, "shell", "echo $$; exec sleep 60"],
                               env=sh.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert sleeper.stdout is not None
    pid = sleeper.stdout.readline().strip().decode()
    assert shell(sh, device, f"ps -o PID,ARGS -p {pid}").stdout.split()[-3:] == [pid.encode(), b"sleep", b"60"]
    assert shell(sh, device, f"kill {pid}").returncode == 0
    assert sleeper.wait(10) == 128 + signal.SIGTERM  # its exit code, as adbd reports it
    sleeper.stdout.close()


def test_a_file_the_shell_user_may_not_read_is_not_pulled(sh: Adb, device: EmulatedPhone, tmp_path: Path) -> None:
    assert shell(sh, device, f"touch {TMP}/secret && chmod a-rwx {TMP}/secret").returncode == 0
    pulled = sh.run("-s", device.address, "pull", f"{TMP}/secret", str(tmp_path / "secret"))
    assert pulled.returncode == 1
    assert b"remote open failed: Permission denied" in pulled.stdout + pulled.stderr
    assert not os.path.exists(tmp_path / "secret")
    shell(sh, device, f"rm -f {TMP}/secret")


def test_forward_reaches_a_port_a_shell_listens_on(sh: Adb, device: EmulatedPhone) -> None:
    """test_zero_packet: `adb forward` to a phone port where `nc -l` listens, with
    payloads that fill whole USB packets (512, 1024)."""
    s = ("-s", device.address)
    phone_port = free_port()
    local = int(sh.run(*s, "forward", "tcp:0", f"tcp:{phone_port}").stdout)
    try:
        for size in (512, 1024):
            listener = subprocess.Popen([sh.binary, *s, "shell", f"echo foo | nc -l -p {phone_port}; echo done"],
                                        env=sh.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
            deadline = time.monotonic() + 5
            while phone_port not in listening_ports(sh, device) and time.monotonic() < deadline:
                time.sleep(0.05)
            with socket.create_connection(("127.0.0.1", local)) as sock:
                sock.sendall(b"a" * size)
                assert sock.recv(4096) == b"foo\n"
            out, _ = listener.communicate(timeout=10)
            assert out.endswith(b"done\n")
        # Nothing listens any more: adbd refuses the OPEN, and adb drops the connection.
        with socket.create_connection(("127.0.0.1", local)) as sock:
            sock.settimeout(10)
            assert sock.recv(10) == b""
    finally:
        sh.run(*s, "forward", "--remove-all")


def listening_ports(adb: Adb, phone: EmulatedPhone) -> set[int]:
    """The phone's listening TCP ports, from its own /proc/net/tcp."""
    rows = shell(adb, phone, "cat /proc/net/tcp").stdout.decode().splitlines()[1:]
    return {int(row.split()[1].split(":")[1], 16) for row in rows if row.split()[3] == "0A"}


def test_reverse_listens_on_the_phone_and_opens_streams_to_the_host(sh: Adb, device: EmulatedPhone) -> None:
    """ForwardReverseTest: the list, --no-rebind, tcp:0, and bytes sent into an
    `adb forward` that come back out of an `adb reverse` of the same phone port."""
    s = ("-s", device.address)
    phone_port, host_port = free_port(), free_port()
    assert sh.run(*s, "reverse", "--no-rebind", f"tcp:{phone_port}", "tcp:1").returncode == 0
    refused = sh.run(*s, "reverse", "--no-rebind", f"tcp:{phone_port}", "tcp:2")
    assert refused.returncode == 1 and b"cannot rebind existing socket" in refused.stderr
    assert sh.run(*s, "reverse", f"tcp:{phone_port}", f"tcp:{host_port}").returncode == 0
    resolved = int(sh.run(*s, "reverse", "tcp:0", "tcp:8888").stdout)
    assert sh.run(*s, "reverse", "--list").stdout.decode().strip().splitlines() == [
        f"(reverse) tcp:{phone_port} tcp:{host_port}", f"(reverse) tcp:{resolved} tcp:8888"]
    assert sh.run(*s, "reverse", "--remove", f"tcp:{resolved}").returncode == 0
    forwarded = int(sh.run(*s, "forward", "tcp:0", f"tcp:{phone_port}").stdout)
    try:
        with socket.create_server(("127.0.0.1", host_port)) as listener:
            with socket.create_connection(("127.0.0.1", forwarded)) as client:
                server, _ = listener.accept()
                with server:
                    client.sendall(b"hello")
                    client.close()
                    server.settimeout(10)
                    assert server.makefile("rb").read() == b"hello"
    finally:
        sh.run(*s, "forward", "--remove-all")
        sh.run(*s, "reverse", "--remove-all")
    assert sh.run(*s, "reverse", "--list").stdout.strip() == b""


def test_push_dry_run_checks_the_path_and_writes_nothing(sh: Adb, device: EmulatedPhone, tmp_path: Path) -> None:
    """test_push_dry_run_*: `adb push -n` (adb 36; adb 29 has no dry run) sends SND2 with
    the dry-run flag, which the phone offers as sendrecv_v2_dry_run_send; adbd then reads
    the data and opens nothing (file_sync_service.cpp, handle_send_file)."""
    if sh.version == "adb29":
        assert sh.run("-s", device.address, "push", "-n", "x", TMP).returncode != 0
        return
    (tmp_path / "memo").write_bytes(b"not to land")
    target = f"{TMP}/dry_run/memo"
    dry = sh.run("-s", device.address, "push", "-n", str(tmp_path / "memo"), target)
    assert dry.returncode == 0, dry
    assert b"1 file pushed" in dry.stdout + dry.stderr
    assert shell(sh, device, f"ls {TMP}/dry_run 2>&1").stdout.endswith(b"No such file or directory\n")


@pytest.mark.parametrize("codec", ["brotli", "lz4", "zstd"])
def test_adb_36_pushes_and_pulls_compressed(sh: Adb, device: EmulatedPhone, tmp_path: Path, codec: str) -> None:
    """FileOperationsTestBrotli/LZ4/Zstd: `push -z`/`pull -z`, one compressed stream per
    file in DATA packets (file_sync_service.cpp), byte for byte. adb 29 predates them."""
    if sh.version == "adb29":
        assert sh.run("-s", device.address, "push", "-z", codec, "x", TMP).returncode != 0
        return
    s = ("-s", device.address)
    assert f"sendrecv_v2_{codec}" in sh.run(*s, "features").stdout.decode().split()
    data = os.urandom(300_000) + b"compressible " * 100_000  # spans several DATA packets
    (tmp_path / "memo").write_bytes(data)
    assert sh.run(*s, "push", "-z", codec, str(tmp_path / "memo"), f"{TMP}/{codec}").returncode == 0
    assert hashlib.sha256(data).hexdigest().encode() in shell(sh, device, f"sha256sum {TMP}/{codec}").stdout
    pulled = sh.run(*s, "pull", "-z", codec, f"{TMP}/{codec}", str(tmp_path / "back"))
    assert pulled.returncode == 0, pulled
    assert (tmp_path / "back").read_bytes() == data
    shell(sh, device, f"rm {TMP}/{codec}")
