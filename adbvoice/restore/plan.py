"""Where each archived note goes back to on this phone, and whether anything stands there.
Pure: the catalog's notes and sightings and the phone's listing in, decisions out.

A note goes back to every path a backup saw it at; a path where nothing stands now is moved
to the layout this phone uses:
WhatsApp wrote under `/sdcard/WhatsApp/…` before Android 11 and under
`/sdcard/Android/media/com.whatsapp/WhatsApp/…` since (the same for Business). For each app
the phone's layout is the one whose folder exists on it (the modern one when both do, as
WhatsApp moves its media there); on a phone with neither, Android 11 or later means modern.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from adbvoice.archive.catalog import NoteRow, SightingRow
from adbvoice.phone.sync import RemoteStat
from adbvoice.whatsapp import AUDIO_SOURCES, VOICE_SOURCES

APPS = (
    # (legacy root, modern root) of WhatsApp and WhatsApp Business
    (b"/sdcard/WhatsApp", b"/sdcard/Android/media/com.whatsapp/WhatsApp"),
    (b"/sdcard/WhatsApp Business", b"/sdcard/Android/media/com.whatsapp.w4b/WhatsApp Business"),
)
_SOURCE_ROOTS = tuple(s.path.encode() + b"/" for s in VOICE_SOURCES + AUDIO_SOURCES)

PUSH, THERE, CHECK, CONFLICT, SKIP = "push", "already there", "check", "left alone", "skipped"
DIFFERENT_FILE = "a different file stands at its path on the phone"
NOT_A_FILE = "something other than a file stands at its path on the phone"
NO_PHONE_PATH = "no phone path known (catalogued from the files alone)"
NOT_WHATSAPP = "its phone path is not in a WhatsApp folder"
SUPERSEDED = "another archived note was seen at the same path later"


@dataclass(frozen=True)
class Decision:
    note: NoteRow
    path: bytes  # on this phone, in its layout ("" when there is none)
    mtime: int
    action: str
    reason: str = ""

    def became(self, action: str, reason: str = "") -> Decision:
        return replace(self, action=action, reason=reason)


def modern_layout(app_roots: Mapping[bytes, RemoteStat], android: str | None) -> tuple[bool, ...]:
    """For each app of APPS: does this phone keep its media in the modern place?"""
    release = _major(android)
    found = []
    for legacy, modern in APPS:
        if app_roots.get(modern, RemoteStat(0, 0, 0, exists=False)).is_dir:
            found.append(True)
        elif app_roots.get(legacy, RemoteStat(0, 0, 0, exists=False)).is_dir:
            found.append(False)
        else:
            found.append(release is None or release >= 11)
    return tuple(found)


def place(path: bytes, modern: Sequence[bool]) -> bytes:
    """`path` moved to this phone's layout; b"" if it is no WhatsApp path we would write."""
    for (legacy, new), use_modern in zip(APPS, modern):
        wanted = new if use_modern else legacy
        for root in (legacy, new):
            if path.startswith(root + b"/"):
                moved = wanted + path[len(root):]
                return moved if _safe(moved) else b""
    return b""


def _safe(path: bytes) -> bool:
    """Below a WhatsApp source folder, with no component that could climb out of it."""
    parts = path.split(b"/")[1:]
    return (path.startswith(_SOURCE_ROOTS) and b"\0" not in path
            and all(part not in (b"", b".", b"..") for part in parts))


def plan(
    notes: Iterable[NoteRow],
    sightings: Mapping[int, Sequence[SightingRow]],
    on_phone: Mapping[bytes, RemoteStat],
    modern: Sequence[bool],
) -> list[Decision]:
    """One decision per (note, path on this phone). Where two notes claim one path, the one
    seen there last goes back."""
    claims: dict[bytes, tuple[str, Decision]] = {}
    decisions: list[Decision] = []
    for note in notes:
        seen = list(sightings.get(note.id or 0, ()))
        if not seen and note.phone_path:
            raw = note.phone_path_raw or note.phone_path.encode("utf-8", "surrogateescape")
            seen = [SightingRow(note.device_serial or "", raw, note.size, note.phone_mtime or 0, note.id or 0, "")]
        if not seen:
            decisions.append(Decision(note, b"", 0, SKIP, NO_PHONE_PATH))
            continue
        targets: dict[bytes, tuple[str, int]] = {}
        for sighting in seen:
            # A path that still holds something is decided where it is; a free one moves
            # to this phone's layout.
            original = sighting.phone_path
            target = original if original in on_phone and _safe(original) else place(original, modern)
            if target and sighting.first_seen >= targets.get(target, ("", 0))[0]:
                targets[target] = (sighting.first_seen, sighting.mtime or note.phone_mtime or 0)
        if not targets:
            decisions.append(Decision(note, b"", 0, SKIP, NOT_WHATSAPP))
        for target, (first_seen, mtime) in targets.items():
            decision = _decide(note, target, mtime, on_phone.get(target))
            earlier = claims.get(target)
            if earlier is None or first_seen >= earlier[0]:
                if earlier is not None:
                    decisions.append(earlier[1].became(SKIP, SUPERSEDED))
                claims[target] = (first_seen, decision)
            else:
                decisions.append(decision.became(SKIP, SUPERSEDED))
    return decisions + [decision for _, decision in claims.values()]


def _decide(note: NoteRow, target: bytes, mtime: int, there: RemoteStat | None) -> Decision:
    if there is None or not there.exists:
        return Decision(note, target, mtime, PUSH)
    if there.is_file and there.size == note.size:
        return Decision(note, target, mtime, CHECK)  # the phone's hash tells whether it is this note
    return Decision(note, target, mtime, CONFLICT, DIFFERENT_FILE if there.is_file else NOT_A_FILE)


def _major(release: str | None) -> int | None:
    digits = (release or "").split(".")[0]
    return int(digits) if digits.isdigit() else None
