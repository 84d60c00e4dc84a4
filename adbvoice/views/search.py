"""`search`: the notes whose transcripts hold the words, best first, each with its words in context.

The catalog's FTS5 index finds and ranks (bm25); here each hit becomes a note with the
piece of its transcript around the first match, and the moment in the note where the
first matching sentence starts (what the page seeks to).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adbvoice.archive import fulltext
from adbvoice.archive.catalog import NoteRow, TranscriptRow, reading
from adbvoice.archive.folder import Archive
from adbvoice.errors import UsageError
from adbvoice.views.listing import NoteFilter, note_json, transcript_json


@dataclass(frozen=True)
class Hit:
    note: NoteRow
    transcript: TranscriptRow
    score: float  # FTS5's bm25: lower is better
    pieces: list[tuple[str, bool]]  # the words in context; True where a query word matched
    at_s: float | None  # where the first matching sentence starts

    def plain_snippet(self) -> str:
        """The context with each match in [brackets] (for a pipe, a log, JSON)."""
        return "".join(f"[{text}]" if hit else text for text, hit in self.pieces)

    def to_json(self) -> dict:
        return {
            **note_json(self.note), "score": round(-self.score, 4), "snippet": self.plain_snippet(), "at_s": self.at_s,
            "transcript": transcript_json(self.transcript),
        }


def search_archive(root: Path, words: Sequence[str], keep: NoteFilter | None = None) -> list[Hit]:
    match = fulltext.fts_query(words)
    if match is None:
        raise UsageError(f"nothing to search for in {' '.join(words)!r}: give words (letters or digits)")
    archive = Archive.open(root, create=False)
    with reading(archive.catalog_path) as catalog:
        found = catalog.search_transcripts(match)
        holding: dict[str, list[NoteRow]] = {}
        for note in catalog.notes():
            holding.setdefault(note.sha256, []).append(note)
    hits, seen = [], set()
    for transcript, score in found:  # best first; a note with several models' transcripts appears once
        for note in holding.get(transcript.sha256, []):
            if note.id in seen or (keep is not None and not keep.matches(note)):
                continue
            seen.add(note.id)
            hits.append(Hit(note, transcript, score, fulltext.snippet(transcript.text or "", words),
                            _first_match(transcript, words)))
    return hits


def _first_match(transcript: TranscriptRow, words: Sequence[str]) -> float | None:
    for start, _, text in transcript.segments:
        if fulltext.matched_spans(text, words):
            return start
    return None
