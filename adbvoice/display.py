"""How values are written for people: sizes, durations, and paths that came from a phone."""

from __future__ import annotations

import unicodedata

# Text a phone controls (model, serial, names, tags) is stored at most this long: Android
# keeps a property value under 92 bytes, and no tag worth reading is longer.
STORED_TEXT_MAX = 200
# Control and format characters (C0, DEL, C1, bidi overrides...), line and paragraph
# separators, and the halves of surrogate pairs: never printed as they are.
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def text_path(raw: bytes) -> str:
    """A phone path for people and the catalog (raw bytes need not be UTF-8)."""
    return raw.decode("utf-8", "replace")


def printable(text: str) -> str:
    """`text` safe to show on a terminal, in a log or in cron's mail: every character in
    _UNPRINTABLE becomes a backslash escape (`\\n`, `\\x1b`, `\\u202e`), so an escape sequence
    in a phone's model or a file name cannot paint the terminal, and one message stays one
    line. Every line that shows text a phone controls goes through here."""
    if text.isprintable():
        return text
    return "".join(_escaped(ch) if unicodedata.category(ch) in _UNPRINTABLE else ch for ch in text)


def _escaped(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def capped(text: str, limit: int = STORED_TEXT_MAX) -> str:
    """At most `limit` characters of `text`, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_bytes(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("KB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
