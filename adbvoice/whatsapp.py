"""Where WhatsApp keeps voice messages on a phone, and what its file names tell us.

Pure data and parsing; nothing here talks to a phone. Since 2021 (Android 11's scoped
storage) WhatsApp writes under Android/media/<package>/; older installs used /sdcard/WhatsApp.
Both can exist on one phone, so every place is listed and looked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from adbvoice.errors import UsageError

SDCARD = "/sdcard"
_MODERN = f"{SDCARD}/Android/media/com.whatsapp/WhatsApp/Media"
_MODERN_BUSINESS = f"{SDCARD}/Android/media/com.whatsapp.w4b/WhatsApp Business/Media"
_LEGACY = f"{SDCARD}/WhatsApp/Media"
_LEGACY_BUSINESS = f"{SDCARD}/WhatsApp Business/Media"


@dataclass(frozen=True)
class Source:
    """One folder tree WhatsApp may keep voice messages in."""

    kind: str  # stable key stored in the catalog, and the word ls, the page and --source use
    path: str
    label: str
    audio: bool = False  # "WhatsApp Audio" (forwarded/attached audio), only on request

    @property
    def family(self) -> str:
        """voice / business / legacy / audio: the group `--source` names with one word."""
        if self.audio:
            return "audio"
        if self.kind.startswith("legacy"):
            return "legacy"
        return "business" if self.kind == "business" else "voice"


VOICE_SOURCES = (
    Source("voice", f"{_MODERN}/WhatsApp Voice Notes", "WhatsApp voice notes"),
    Source("business", f"{_MODERN_BUSINESS}/WhatsApp Business Voice Notes", "WhatsApp Business voice notes"),
    Source("legacy", f"{_LEGACY}/WhatsApp Voice Notes", "WhatsApp voice notes (before Android 11)"),
    Source(
        "legacy-business",
        f"{_LEGACY_BUSINESS}/WhatsApp Business Voice Notes",
        "WhatsApp Business voice notes (before Android 11)",
    ),
)
AUDIO_SOURCES = (
    Source("audio", f"{_MODERN}/WhatsApp Audio", "WhatsApp Audio", audio=True),
    Source("business-audio", f"{_MODERN_BUSINESS}/WhatsApp Business Audio", "WhatsApp Business Audio", audio=True),
    Source("legacy-audio", f"{_LEGACY}/WhatsApp Audio", "WhatsApp Audio (before Android 11)", audio=True),
    Source(
        "legacy-business-audio",
        f"{_LEGACY_BUSINESS}/WhatsApp Business Audio",
        "WhatsApp Business Audio (before Android 11)",
        audio=True,
    ),
)
ALL_SOURCES = VOICE_SOURCES + AUDIO_SOURCES
# One vocabulary: `ls`, the catalog and the page show a note's source by its kind, and
# `--source` takes those very words. Four of them also name their kin: `legacy` the
# Business folder before Android 11 too, `audio` every WhatsApp Audio folder.
SOURCE_FAMILIES = ("voice", "business", "legacy", "audio")
SOURCE_WORDS = SOURCE_FAMILIES + tuple(s.kind for s in ALL_SOURCES if s.kind not in SOURCE_FAMILIES)


def kinds_named(word: str) -> frozenset[str]:
    """The sources `--source WORD` chooses; UsageError for a word that is none of SOURCE_WORDS."""
    word = word.lower()
    if word in SOURCE_FAMILIES:
        return frozenset(s.kind for s in ALL_SOURCES if s.family == word)
    if word in SOURCE_WORDS:
        return frozenset({word})
    raise UsageError(f"--source {word!r}: use one of {', '.join(SOURCE_WORDS)}")

# What WhatsApp records, receives or forwards as audio. `.nomedia` and everything else in
# these folders is not a note.
AUDIO_EXTENSIONS = frozenset(
    {".opus", ".ogg", ".oga", ".m4a", ".mp3", ".aac", ".amr", ".awb", ".wav", ".3gp", ".3ga", ".flac"}
)

_NAME_DATE = re.compile(r"^(?:PTT|AUD)-(\d{4})(\d{2})(\d{2})-")


def sources_for(include_audio: bool) -> tuple[Source, ...]:
    return VOICE_SOURCES + AUDIO_SOURCES if include_audio else VOICE_SOURCES


def is_audio_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in AUDIO_EXTENSIONS


def date_from_name(name: str) -> date | None:
    """The day in `PTT-YYYYMMDD-WA0001.opus` / `AUD-…`, if the name has a real one."""
    match = _NAME_DATE.match(name)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
