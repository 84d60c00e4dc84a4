"""Fixtures for the emulated phone's own tests: real TCP, Google's adb (Debian's 29 and
platform-tools 36), real bwrap/mksh/toybox. A missing tool fails the test (CI installs
them), it never skips."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from adbvoice.phone import wire
from tests.emulator.helpers import FIVE_MB, GOOGLE_ADBS, Adb, RawHost, RawHostFactory, require_tools


@pytest.fixture(scope="session", autouse=True)
def _tools_present() -> None:
    require_tools()


@pytest.fixture(scope="session", params=list(GOOGLE_ADBS))
def adb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adb]:
    """One isolated adb server per Google adb (29 and 36) for the session, killed at the end:
    each test that takes it runs with both."""
    server = Adb(tmp_path_factory.mktemp(f"{request.param}-home"), request.param)
    started = server.run("start-server")
    assert started.returncode == 0, started
    yield server
    server.run("kill-server")


@pytest.fixture
def phone_dir(tmp_path: Path) -> Path:
    """A small /sdcard: nested folders, an empty file, a 5 MB file, odd names."""
    root = tmp_path / "sdcard"
    notes = root / "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202418"
    (notes / "Sent").mkdir(parents=True)
    (notes / "PTT-20240501-WA0001.opus").write_bytes(os.urandom(FIVE_MB))
    (notes / "PTT-20240502-WA0002.opus").write_bytes(b"OggS" + os.urandom(3000))
    (notes / "Sent" / "PTT-20240503-WA0003.opus").write_bytes(os.urandom(70_000))
    (notes / ".nomedia").write_bytes(b"")
    (root / "Music" / "Grüße aus Köln").mkdir(parents=True)
    (root / "Music" / "Grüße aus Köln" / "Lied Nr. 1 – ünïcødé.opus").write_bytes(os.urandom(1234))
    (root / "Download").mkdir()
    (root / "Download" / "with space.txt").write_text("a file name with a space\n")
    (root / "empty folder").mkdir()
    return root


@pytest.fixture
def phone(phone_dir: Path) -> Iterator[EmulatedPhone]:
    with EmulatedPhone(phone_dir) as p:
        yield p


@pytest.fixture
def raw_host() -> Iterator[RawHostFactory]:
    """raw_host(phone, maxdata=...) -> a RawHost connected over TCP (CNXN not sent yet);
    all of them are closed after the test."""
    hosts: list[RawHost] = []

    def make(phone: EmulatedPhone, maxdata: int = wire.MAX_PAYLOAD) -> RawHost:
        host = RawHost(phone.port, maxdata=maxdata)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()
