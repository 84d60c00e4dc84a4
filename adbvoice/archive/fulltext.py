"""How a transcript becomes searchable, and how a match is found again to show it.

The catalog indexes transcripts with SQLite FTS5's `unicode61` tokenizer with
`remove_diacritics 2`: case and accents are folded, so `cumpleanos` finds `cumpleaños`.
That tokenizer splits words at spaces and punctuation, which Chinese, Japanese and Thai do
not write: a sentence in those scripts would be one token, findable only whole. So every
character of those scripts is indexed as a word of its own, and a run of them in a query
becomes a phrase of single characters — the same characters next to each other, in that
order: a substring search, the way unigram indexes of CJK search engines work.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, Hiragana,
# Katakana, CJK ideographs (with extension A and compatibility), half-width Katakana.
_NO_SPACES = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]"
)
_TOKEN = re.compile(r"[^\W_]+")
TOKENIZER = "unicode61 remove_diacritics 2"


def indexed_text(text: str) -> str:
    """The text as the index receives it: each character of a spaceless script set apart."""
    return _NO_SPACES.sub(lambda found: f" {found[0]} ", text)


def query_tokens(words: Sequence[str]) -> list[list[str]]:
    """Each query word cut where the index cuts it (CJK a character at a time). Case and
    accents are left to FTS5, which folds a query's phrases with the index's own
    tokenizer: folding here too could differ from it (NFKD strips the dakuten of が, which
    unicode61 keeps)."""
    tokens = [_TOKEN.findall(indexed_text(word)) for word in words]
    return [t for t in tokens if t]


def fts_query(words: Sequence[str]) -> str | None:
    """An FTS5 MATCH expression: every word must occur; a word is a quoted phrase of its
    tokens (so no word is read as FTS5 syntax), matched as a prefix when it ends in letters
    (`birth` finds `birthday`). None when the words hold nothing searchable."""
    phrases = []
    for tokens in query_tokens(words):
        prefix = "" if _NO_SPACES.fullmatch(tokens[-1][-1]) else "*"
        phrases.append('"' + " ".join(tokens) + '"' + prefix)
    return " AND ".join(phrases) or None


def fold(text: str) -> str:
    """Lower case without accents, as the index compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _folded_with_positions(text: str) -> tuple[str, list[int]]:
    folded, where = [], []
    for index, char in enumerate(text):
        for out in fold(char):
            folded.append(out)
            where.append(index)
    return "".join(folded), where


def matched_spans(text: str, words: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) in `text` of every place a query token occurs: a word token at the
    start of a word, a spaceless-script character anywhere; sorted, not overlapping."""
    folded, where = _folded_with_positions(text)
    spans = []
    for tokens in query_tokens(words):
        for token in map(fold, tokens):
            boundary = "" if _NO_SPACES.fullmatch(token) else r"(?<![^\W_])"
            for found in re.finditer(boundary + re.escape(token), folded):
                spans.append((where[found.start()], where[found.end() - 1] + 1))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, words: Sequence[str], *, width: int = 70) -> list[tuple[str, bool]]:
    """The text around its first match, as (piece, is_match) pieces, cut at word
    boundaries to about `width` characters each side, with `…` where it was cut."""
    spans = matched_spans(text, words)
    if not spans:
        return [(text[: 2 * width], False)]
    start = max(0, spans[0][0] - width)
    end = min(len(text), spans[0][1] + width)
    if start > 0 and " " in text[start:spans[0][0]]:
        start = text.index(" ", start) + 1
    if end < len(text) and " " in text[spans[0][1]:end]:
        end = text.rindex(" ", spans[0][1], end)
    pieces: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    at = start
    for span_start, span_end in spans:
        if span_start >= end:
            break
        if span_start < at:
            continue
        pieces += [(text[at:span_start], False), (text[span_start:min(span_end, end)], True)]
        at = min(span_end, end)
    pieces.append((text[at:end], False))
    if end < len(text):
        pieces.append(("…", False))
    return [(piece, hit) for piece, hit in pieces if piece]
