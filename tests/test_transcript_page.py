"""The listening page with transcripts, in a real headless Chromium from file://: each note's
words under its player, the filter box searching them, a click on a sentence playing the note
from that sentence, and a transcript holding markup shown as the text it is."""

from __future__ import annotations

import json
import shutil

from adbvoice.archive.catalog import Catalog, TranscriptRow
from tests.conftest import run_cli
from tests.test_html_export import chromium, export, wait_until  # noqa: F401 - a fixture
from tests.test_transcripts import BIRTHDAY, STATION, spoken_archive, transcribed  # noqa: F401 - fixtures

MARKUP = '<b>bold</b> <img src=x onerror="document.title=\'owned\'"> & &amp;'


def item(path: str) -> str:
    return f"[...document.querySelectorAll('li.note')].find(li => li.dataset.path === {json.dumps(path)})"


def test_the_page_shows_searches_and_plays_the_transcripts(transcribed, tmp_path, chromium):  # noqa: F811
    archive = tmp_path / "archive"
    shutil.copytree(transcribed, archive)
    station = next(n for n in json.loads(run_cli("ls", archive, "--json").stdout) if n["archive_path"] == STATION)
    catalog = Catalog.open(archive / ".adbvoice" / "catalog.sqlite")
    try:  # a newer transcript of the station note whose first sentence is markup
        catalog.add_transcript(TranscriptRow(station["sha256"], "by-hand", "en", 1.0, "forced", f"{MARKUP} see you",
                                             [(0.0, 1.5, MARKUP), (2.0, 4.0, "see you at the station")], 4.2, None,
                                             "2999-01-01T00:00:00+00:00"))
    finally:
        catalog.close()
    page = chromium.page()
    page.open(export(archive).as_uri())

    said = page.evaluate(f"{item(BIRTHDAY)}.querySelector('.transcript').textContent")
    assert said.startswith("Happy birthday, Grandma!")
    assert page.evaluate(f"{item(STATION)}.querySelector('.transcript button').textContent") == MARKUP
    assert page.evaluate(f"{item(STATION)}.querySelectorAll('b, img').length") == 0
    assert page.evaluate("document.title") != "owned"

    page.evaluate("document.getElementById('filter').focus()")
    page.type_text("GRANDMA kitchen")
    wait_until(page, "document.getElementById('status').textContent.startsWith('1 of')")
    assert page.evaluate("[...document.querySelectorAll('li.note')].map(li => li.dataset.path)") == [BIRTHDAY]

    page.evaluate("document.getElementById('filter').value = ''; document.getElementById('filter').dispatchEvent(new Event('input'))")
    wait_until(page, "document.getElementById('status').textContent.startsWith('Showing all')")
    page.evaluate(f"{item(STATION)}.querySelectorAll('.transcript button')[1].scrollIntoView({{block: 'center'}})")
    x, y = page.evaluate(f"""(() => {{ const r = {item(STATION)}.querySelectorAll('.transcript button')[1]
        .getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    for kind in ("mousePressed", "mouseReleased"):  # a person's click: the browser lets it play
        page.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
    position = wait_until(page, f"{item(STATION)}.querySelector('audio').currentTime >= 2.0 && "
                                f"{item(STATION)}.querySelector('audio').currentTime")
    assert 2.0 <= position < 4.2
    assert page.evaluate(f"{item(STATION)}.querySelectorAll('.transcript button.playing').length") == 1
    assert page.errors == []
