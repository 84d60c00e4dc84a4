"""The steps of publishing a note, as seams a test can break: where a crash may land.

Shared by the in-process kill-point tests (monkeypatch) and by crash_driver.py, which
patches the same seams in a real CLI process and ends it with os._exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from adbvoice.archive.catalog import Catalog
from adbvoice.archive.folder import Archive, TempNote

NTH = 3  # the step breaks on the third note, so that notes before it are already archived
CRASH_EXIT = 86  # the crash driver's exit code: proof that os._exit ran at the seam


@dataclass(frozen=True)
class KillPoint:
    key: str
    step: str  # where in publishing, for people
    owner: type
    attribute: str
    when: str  # "before" or "after" the call; "midway" writes half the data first


KILL_POINTS = (
    KillPoint("write", "receiving the note", TempNote, "write", "midway"),
    KillPoint("seal", "written, before it is synced", TempNote, "store", "after"),
    KillPoint("link", "synced, before link", Archive, "_link", "before"),
    KillPoint("linked", "linked, before the folder sync", Archive, "_link", "after"),
    KillPoint("catalog", "durable, before the catalog", Catalog, "add_note", "before"),
    KillPoint("transaction", "inside the catalog transaction", Catalog, "_sighting", "before"),
    KillPoint("catalogued", "catalogued, before the next note", Catalog, "add_note", "after"),
)


def arm(point: KillPoint, setattr_: Callable[[object, str, object], None], action: Callable[[], None]) -> list[int]:
    """Patch `point` so that `action` runs there on the NTH note; returns the counter that
    proves it fired ([1] once it has)."""
    original = getattr(point.owner, point.attribute)
    fired = [0]
    counting = threading.Lock()
    occasions: list[object] = []  # write: one occasion per temp file; otherwise one per call

    def fire() -> None:
        fired[0] += 1
        action()

    def patched(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - any seam
        if point.when == "midway":
            first = self.path not in occasions  # a TempNote: its random name is its identity
            if first:
                occasions.append(self.path)
            if not (first and len(occasions) == NTH):
                return original(self, *args, **kwargs)
            data = args[0]
            original(self, data[: len(data) // 2])
            fire()
            return original(self, data[len(data) // 2 :])
        with counting:  # notes are sealed by several threads at once
            occasions.append(1)
            due = len(occasions) == NTH
        if due and point.when == "before":
            fire()
        result = original(self, *args, **kwargs)
        if due and point.when == "after":
            fire()
        return result

    setattr_(point.owner, point.attribute, patched)
    return fired
