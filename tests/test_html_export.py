"""A person exports the archive as one page and listens in a browser, offline: checked in
a real headless Chromium, from file://, on a phone-sized and a desktop-sized screen."""

from __future__ import annotations

import json
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from adbvoice.archive.catalog import Catalog
from tests.conftest import run_cli
from tests.headless import Chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TAB, ENTER = ("Tab", 9), ("Enter", 13, "\r")


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    browser = Chromium(tmp_path_factory.mktemp("chromium"))
    yield browser
    browser.close()


def export(archive, *options):
    result = run_cli("export", "--html", archive, *options)
    assert result.exit_code == 0, result.stderr
    return Path(re.match(r"wrote (.+) \(", result.stdout)[1])


def extra_path(number):
    return f"2019/{1 + number % 12:02d}/01/PTT-extra-{number:05d}.opus"


def wait_until(page, condition):
    """Poll a JavaScript condition until it holds (20 s at most: a hang, not a timing check)."""
    return page.evaluate(
        "new Promise((ok, fail) => { const start = Date.now(); (function poll() {"
        f" const value = ({condition}); if (value) return ok(value);"
        f" if (Date.now() - start > 20000) return fail(new Error({json.dumps('never true: ' + condition)}));"
        " setTimeout(poll, 25); })(); })"
    )


def shown_notes(page):
    return page.evaluate("document.querySelectorAll('li.note').length")


def player_duration(page, archive_path):
    """What the page's <audio> for this note says its duration is, once its metadata loaded."""
    return page.evaluate(f"""(async () => {{
        const item = [...document.querySelectorAll('li.note')].find(li => li.dataset.path === {json.dumps(archive_path)});
        const audio = item.querySelector('audio');
        audio.preload = 'metadata';
        if (audio.readyState < 1) {{
            await new Promise((ok, fail) => {{
                audio.addEventListener('loadedmetadata', ok, {{once: true}});
                audio.addEventListener('error', () => fail(new Error('cannot play: ' + audio.error.message)), {{once: true}});
                audio.load();
            }});
        }}
        return audio.duration;
    }})()""")


def test_the_export_is_one_private_self_contained_file(backed_up, tmp_path):
    archive = backed_up.copy(tmp_path)
    page = export(archive)

    assert page == archive / "voice-notes.html"
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    text = page.read_text()
    assert not re.search(r"https?:|<link|<script src|@import|url\(", text)
    assert all(json.dumps(n["archive_path"]) in text for n in backed_up.notes)
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert run_cli("export", archive).exit_code == 2  # say which format


def test_the_page_plays_every_opus_note_from_file_with_no_errors_on_a_phone_and_a_desktop(backed_up, tmp_path, chromium):
    archive = backed_up.copy(tmp_path)
    url = export(archive).as_uri()
    page = chromium.page()
    page.viewport(390, 844, mobile=True)
    page.open(url)

    notes = backed_up.notes
    assert shown_notes(page) == len(notes)
    assert page.evaluate("document.getElementById('totals').textContent").startswith(f"{len(notes)} notes · ")
    assert page.evaluate("document.querySelectorAll('h2').length") == len({n["recorded_on"] for n in notes})
    opus = [n for n in notes if n["codec"] == "opus" and not n["audio_error"]]
    assert len(opus) > 20
    for note in opus:
        assert player_duration(page, note["archive_path"]) == pytest.approx(note["duration_s"], abs=0.1), note
    broken = page.evaluate("[...document.querySelectorAll('li.note .broken a')].length")
    assert broken == sum(bool(n["audio_error"]) for n in notes)

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    page.screenshot(ARTIFACTS / "html-export-phone.png")
    page.viewport(1280, 900, mobile=False)
    page.screenshot(ARTIFACTS / "html-export-desktop.png")

    assert page.errors == []
    local = (archive.as_uri() + "/", "data:")  # data: the player's own icons
    assert page.requests and all(u.startswith(local) for u in page.requests), page.requests


def test_the_filter_works_from_the_keyboard_and_says_what_it_found(backed_up, chromium):
    elsewhere = backed_up.root.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    page = chromium.page()
    page.open(export(backed_up.root, "-o", elsewhere / "page.html").as_uri())

    page.key(*TAB)
    assert page.evaluate("document.activeElement.textContent") == "Skip to the notes"
    page.key(*TAB)
    assert page.evaluate("document.activeElement.id") == "filter"
    assert page.evaluate("document.activeElement.labels[0].textContent") == "Filter the notes"
    page.type_text("2021-06")

    june = [n for n in backed_up.notes if n["recorded_on"].startswith("2021-06")]
    status = wait_until(page, "document.getElementById('status').textContent.includes('match') && "
                              "document.getElementById('status').textContent")
    assert status.startswith(f"{len(june)} of {len(backed_up.notes)} notes match")
    assert shown_notes(page) == len(june)
    assert page.evaluate("[...document.querySelectorAll('audio')].every(a => a.getAttribute('aria-label'))")
    first = june[0]["archive_path"]  # from ../elsewhere/ the relative links still reach the archive
    assert player_duration(page, first) == pytest.approx(june[0]["duration_s"], abs=0.1)
    assert page.errors == []


def test_a_note_whose_name_is_hostile_to_urls_still_plays(backed_up, tmp_path, chromium):
    archive = backed_up.copy(tmp_path)
    note = next(n for n in backed_up.notes if n["codec"] == "opus" and not n["audio_error"])
    odd = "2021/Grüße #1 50% ?.opus"
    (archive / note["archive_path"]).rename(archive / odd)
    assert run_cli("catalog", "rebuild", archive).exit_code == 0
    page = chromium.page()
    page.open(export(archive).as_uri())

    page.evaluate("document.getElementById('filter').focus()")
    page.type_text("Grüße #1")
    wait_until(page, "document.getElementById('status').textContent.startsWith('1 of')")
    assert player_duration(page, odd) == pytest.approx(note["duration_s"], abs=0.1)
    assert page.errors == []


def test_ten_thousand_notes_open_a_page_at_a_time_and_the_filter_searches_them_all(backed_up, tmp_path, chromium):
    archive = backed_up.copy(tmp_path)
    catalog = Catalog.open(archive / ".adbvoice" / "catalog.sqlite")
    try:
        model = next(catalog.notes())
        extra = 10_000 - catalog.count_notes()
        catalog.restore([], [
            replace(model, id=None, archive_path=extra_path(i), recorded_on=extra_path(i)[:10].replace("/", "-"),
                    sha256=f"{i:064x}")
            for i in range(extra)
        ], [])
    finally:
        catalog.close()
    page = chromium.page()
    page.viewport(1280, 900, mobile=False)
    page.open(export(archive).as_uri())

    assert page.evaluate("document.getElementById('totals').textContent").startswith("10,000 notes · ")
    assert page.evaluate("document.getElementById('status').textContent") == "Showing all 10,000 notes, newest first."
    assert shown_notes(page) == 100
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    wait_until(page, "document.querySelectorAll('li.note').length >= 200")
    page.call("Runtime.evaluate", expression="document.getElementById('more').focus()")
    page.key(*ENTER)
    wait_until(page, "document.querySelectorAll('li.note').length >= 300")

    page.evaluate("document.getElementById('filter').focus()")
    page.type_text("extra-04321")
    wait_until(page, "document.getElementById('status').textContent.startsWith('1 of 10,000')")
    assert page.evaluate("[...document.querySelectorAll('li.note')].map(li => li.dataset.path)") == [extra_path(4321)]
    assert page.errors == []
