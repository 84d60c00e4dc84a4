"""The exit-code contract: README's table is the code's (tests/test_docs.py), every code a
test saw the CLI give is in it, and, over the whole suite, every code in it was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from adbvoice.errors import exit_code_table
from tests.conftest import EXIT_CODES_SEEN

TESTS = Path(__file__).parents[1]


def whole_suite(session: pytest.Session) -> bool:
    """Every test module ran, none deselected: only then has every code had its chance."""
    options = session.config.option
    collected = {item.path for item in session.items}
    return not (options.keyword or options.markexpr or options.deselect) and set(TESTS.rglob("test_*.py")) <= collected


@pytest.mark.order_last
def test_every_exit_code_in_the_readme_is_produced_by_some_test(request, figures):
    table = exit_code_table()
    undocumented = EXIT_CODES_SEEN - set(table)
    assert not undocumented, f"the CLI exited with codes README does not list: {sorted(undocumented)}"
    if not whole_suite(request.session):
        pytest.skip("only the whole suite produces every exit code")
    row = figures.row("Exit-code contract")
    produced = set(table) & EXIT_CODES_SEEN
    row.case(cases=len(table), fired=len(produced))
    row.notes.update({"codes in README": len(table), "produced by a test": len(produced)})
    assert set(table) <= EXIT_CODES_SEEN, f"no test produced: {sorted(set(table) - EXIT_CODES_SEEN)}"
