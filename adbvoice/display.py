"""How values are written for people: sizes, durations, and paths that came from a phone."""

from __future__ import annotations


def text_path(raw: bytes) -> str:
    """A phone path for people and the catalog (raw bytes need not be UTF-8)."""
    return raw.decode("utf-8", "replace")


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


def printable(text: str) -> str:
    """Text a phone or a file supplied, safe to print: control characters become '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)
