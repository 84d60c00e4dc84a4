"""Where in the archive a note goes: the `--layout` template and safe file names.

Nothing from the phone is trusted as a path: names are made safe here before any of them
reaches the filesystem, and a template is checked once, before the run, so that no value
can make a rendered path leave the archive or enter its private `.adbvoice/` folder.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath

from adbvoice.errors import LayoutError

DEFAULT_LAYOUT = "{year}/{month}/{day}/{name}"
TOKENS = {
    "year": "the note's year, 2024",
    "month": "two-digit month, 05",
    "day": "two-digit day, 07",
    "week": "two-digit ISO week, 18 (as WhatsApp's weekly folders)",
    "isoyear": "the ISO week's year (differs from {year} around New Year)",
    "name": "the file name as on the phone (made safe)",
    "stem": "the name without its extension",
    "ext": "the extension without the dot, opus",
    "source": "voice, business, legacy, legacy-business, audio, ...",
    "device": "the phone's model (made safe)",
}
PRIVATE_DIR = ".adbvoice"
# The one file adbvoice writes among the notes: `export --html`'s page (in the archive's
# root by default, or in a folder of it given to -o), and the temp file it is written as.
PAGE_NAME = "voice-notes.html"
_PAGE_TEMP = re.compile(r"\.voice-notes\.html\.[0-9a-f]{8}\.tmp")
NAME_MAX = 255  # bytes, the limit of ext4, btrfs, xfs and exFAT
# Room kept below NAME_MAX for a collision suffix such as "-12".
SUFFIX_ROOM = 8
# Filesystems that refuse Windows' forbidden names (a USB stick, an exFAT card, an NTFS
# disk through ntfs-3g, which shows as fuseblk as exFAT's FUSE driver does, a NAS share):
# on them every name is made portable(), the same way on every run.
PORTABLE_FILESYSTEMS = frozenset({"vfat", "msdos", "exfat", "ntfs", "ntfs3", "fuseblk", "cifs", "smb3", "smbfs"})
_WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in "123456789"}
)


@dataclass(frozen=True)
class SafeName:
    name: str
    changed: bool  # True when the phone's bytes could not be used as they are


def portable(part: str) -> str:
    """`part` as FAT, exFAT, NTFS and SMB take it: `< > : " | ? *` become `_`, so do
    trailing dots and spaces (Windows drops them), and a reserved device name (`CON`,
    `NUL`, `COM1`..., with any extension) gets a leading `_`."""
    cleaned = "".join("_" if ch in _WINDOWS_FORBIDDEN else ch for ch in part)
    kept = cleaned.rstrip(". ")
    cleaned = kept + "_" * (len(cleaned) - len(kept))
    if cleaned.split(".")[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        cleaned = "_" + cleaned
    return cleaned


def safe_name(raw: bytes, *, portable_names: bool = False) -> SafeName:
    """A file name that is valid UTF-8, holds no separator or control character, is not
    `.`/`..`, and fits the filesystem's 255 bytes with room for a collision suffix; with
    `portable_names`, also one that FAT, exFAT, NTFS and SMB take (portable())."""
    text = raw.decode("utf-8", "replace")
    if text.isascii() and text.isprintable() and "/" not in text and "\\" not in text:
        cleaned = text  # nearly every name: no character to look up one by one
    else:
        cleaned = "".join(
            "_" if ch in "/\\\ufffd" or unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch for ch in text
        )
    if cleaned.strip(".") == "":
        cleaned = "_" + cleaned
    if portable_names:
        cleaned = portable(cleaned)
    cleaned = _fit(cleaned, NAME_MAX - SUFFIX_ROOM)
    return SafeName(cleaned, cleaned.encode() != raw)


def _fit(name: str, limit: int) -> str:
    """Shorten the stem (never the extension) until the UTF-8 name fits `limit` bytes."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, ext = name, ""
    tail = f".{ext}" if ext else ""
    budget = limit - len(tail.encode())
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    return stem + tail


def with_suffix_number(name: str, number: int) -> str:
    """`PTT-…-WA0001.opus` → `PTT-…-WA0001-2.opus`: the name for the next note that
    wants a taken name with different content."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name}-{number}"
    return f"{stem}-{number}.{ext}"


@functools.lru_cache(maxsize=64)  # the same source and device for every note of a run
def _safe_component(value: str, portable_names: bool) -> str:
    return safe_name(value.encode(), portable_names=portable_names).name.replace(" ", "_") if value else "unknown"


@dataclass(frozen=True)
class Layout:
    template: str
    portable_names: bool = False  # the archive is on one of PORTABLE_FILESYSTEMS

    @classmethod
    def parse(cls, template: str) -> Layout:
        """Check a template once: known tokens only, relative, no `..`, `{name}` in the last part."""
        fields = []
        try:
            for literal, field, spec, conversion in string.Formatter().parse(template):
                if "\0" in literal or "\\" in literal:
                    raise LayoutError(f"--layout {template!r}: NUL and backslash are not allowed")
                if field is not None:
                    if field not in TOKENS or spec or conversion:
                        known = " ".join("{" + t + "}" for t in TOKENS)
                        raise LayoutError(f"--layout {template!r}: unknown token {{{field}}}; use {known}")
                    fields.append(field)
        except ValueError as exc:
            raise LayoutError(f"--layout {template!r}: {exc}") from exc
        parts = template.split("/")
        if template.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise LayoutError(f"--layout {template!r}: must be a relative path without empty, '.' or '..' parts")
        if parts[0].lower() == PRIVATE_DIR:
            raise LayoutError(f"--layout {template!r}: {PRIVATE_DIR}/ is adbvoice's own folder")
        if "{name}" not in parts[-1] and not ("{stem}" in parts[-1] and "{ext}" in parts[-1]):
            raise LayoutError(f"--layout {template!r}: the last part must contain {{name}} (or {{stem}} and {{ext}})")
        return cls(template)

    def render(self, *, day: date, name: str, source: str, device: str) -> PurePosixPath:
        """The archive-relative path; `name` must already be a safe_name()."""
        iso = day.isocalendar()
        stem, dot, ext = name.rpartition(".")
        values = {
            "year": f"{day.year:04d}",
            "month": f"{day.month:02d}",
            "day": f"{day.day:02d}",
            "week": f"{iso[1]:02d}",
            "isoyear": f"{iso[0]:04d}",
            "name": name,
            "stem": stem if dot else name,
            "ext": ext if dot else "",
            "source": _safe_component(source, self.portable_names),
            "device": _safe_component(device, self.portable_names),
        }
        parts = self.template.format(**values).split("/")
        if self.portable_names:
            parts = [portable(p) for p in parts]
        parts = [_fit(p, NAME_MAX - SUFFIX_ROOM) for p in parts]
        if any(p in ("", ".", "..") for p in parts):
            raise LayoutError(f"--layout {self.template!r} gives an unusable path for {name!r}")
        if parts[0].lower() == PRIVATE_DIR:
            # A phone called ".adbvoice" under {device}: any case, for filesystems that
            # ignore it (FAT, exFAT, NTFS, APFS), and the same on every filesystem.
            parts[0] = "_" + parts[0]
        return PurePosixPath(*parts)


def written_by_adbvoice(name: str) -> bool:
    """A file adbvoice writes in the archive that is not a note (the page): verify,
    rebuild and backup leave it out, as they leave out `.adbvoice/`."""
    return name == PAGE_NAME or _PAGE_TEMP.fullmatch(name) is not None
