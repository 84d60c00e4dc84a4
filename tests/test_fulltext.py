"""Whatever a transcript says, each of its words finds it: the query side (archive/fulltext.py)
and SQLite's unicode61 tokenizer must cut and fold words alike, in every script — Latin with
accents, Cyrillic, Greek, Arabic, Chinese, Japanese, Thai — and with every punctuation."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adbvoice.archive import fulltext
from adbvoice.archive.catalog import Catalog, TranscriptRow

LETTERS = "abcdefghijklmnopqrstuvwxyzéèêëñçüößåøæłžšœ" + "привет" + "γειασου" + "مرحبا" + "生日快乐奶厨房" + "ありがとうカタ" + "สุขสันต์วันเกิด" + "0123456789"
WORD = st.text(alphabet=LETTERS, min_size=1, max_size=8)
SHAS = (f"{n:064x}" for n in itertools.count(1))
GAP = st.sampled_from([" ", ", ", ". ", "! ", "? ", " - ", "'", "’", "\u00a0", "…", "\n", "“", "”"])


@st.composite
def sentences(draw):
    words = draw(st.lists(WORD, min_size=1, max_size=8))
    gaps = draw(st.lists(GAP, min_size=len(words), max_size=len(words)))
    text = "".join(w + g for w, g in zip(words, gaps)).strip()
    return text, words


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    opened = Catalog.open(tmp_path_factory.mktemp("fulltext") / "catalog.sqlite")
    yield opened
    opened.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(said=sentences(), upper=st.booleans())
def test_each_word_of_a_transcript_finds_it_and_is_highlighted(catalog, said, upper):
    text, words = said
    sha = next(SHAS)
    catalog.add_transcript(TranscriptRow(sha, "by-hand", None, None, None, text, [(0.0, 1.0, text)], 1.0, None,
                                         "2024-05-04T00:00:00+00:00"))
    for word in words:
        # in upper case, where that is the same word to SQLite (not ß → SS, not ς → Σ)
        asked = word.upper() if upper and word.upper().lower() == word else word
        match = fulltext.fts_query([asked])
        if match is None:
            continue
        assert sha in {row.sha256 for row, _ in catalog.search_transcripts(match)}, (text, asked, match)
        assert any(hit for _, hit in fulltext.snippet(text, [asked], width=len(text))), (text, asked)


def test_a_query_is_never_read_as_fts5_syntax(tmp_path):
    catalog = Catalog.open(tmp_path / "catalog.sqlite")
    try:
        catalog.add_transcript(TranscriptRow("1" * 64, "by-hand", "en", 1.0, "forced", 'NOT a "NEAR" OR AND (x*)',
                                             [], 1.0, None, "2024-05-04T00:00:00+00:00"))
        for words in (["NOT"], ["near", "OR"], ['"x'], ["(x*)"], ["AND"]):
            assert len(catalog.search_transcripts(fulltext.fts_query(words))) == 1, words
        assert fulltext.fts_query(["?!", "..."]) is None
    finally:
        catalog.close()
    assert re.fullmatch(r'"[^"]+"\*( AND "[^"]+"\*)*', fulltext.fts_query(["don't", "stop"]))
