"""Putting files on the phone: many pushes pipelined on one sync stream, each answered in
order, and a push the phone refuses does not stop the ones after it."""

from __future__ import annotations

import os
from pathlib import Path

from adbvoice.emulator import EmulatedPhone, Faults
from adbvoice.phone import connect
from adbvoice.phone.connect import ConnectOptions
from adbvoice.phone.sync import PushItem


class Answers:
    def __init__(self) -> None:
        self.said: list[tuple] = []

    def pushed(self, index: int) -> None:
        self.said.append(("okay", index))

    def refused(self, index: int, message: str) -> None:
        self.said.append(("fail", index, message))


def test_sixty_files_are_answered_in_order_on_one_stream_and_a_refused_one_costs_one_more_stream(tmp_path: Path, home: Path):
    root = tmp_path / "sdcard"
    (root / "Music").mkdir(parents=True)
    contents = {f"/sdcard/Music/memo-{i}.m4a".encode(): os.urandom(300 * i + 1) for i in range(60)}
    contents[b"/sdcard/Alarms/refused.m4a"] = b"read-only here"
    contents[b"/sdcard/Music/after.m4a"] = b"still pushed"
    with EmulatedPhone(root, faults=Faults(read_only_paths="/sdcard/Alarms/*")) as emulated:
        phone = connect.connect(ConnectOptions(("127.0.0.1", emulated.port), None, home / ".android" / "adbkey"), print)
        items = [PushItem(path, 0o644, 1_600_000_000 + n, lambda data=data: iter([data[:100], data[100:]]))
                 for n, (path, data) in enumerate(contents.items())]
        answers = Answers()
        phone.sync.push_many(items, answers)
        phone.close()
        services = emulated.log.services()
    assert answers.said == [*(("okay", i) for i in range(60)), ("fail", 60, "couldn't create file: Read-only file system"),
                            ("okay", 61)]
    for n, (path, data) in enumerate(contents.items()):
        on_phone = root / path.decode().removeprefix("/sdcard/")
        if b"Alarms" in path:
            assert not on_phone.exists()
        else:
            assert on_phone.read_bytes() == data and on_phone.stat().st_mtime == 1_600_000_000 + n
    assert services == ["sync:", "sync:"]  # the FAIL ended the first stream; the rest went on a second
