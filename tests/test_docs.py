"""What README promises matches what the code does."""

import re
from pathlib import Path

from adbvoice.cli import app
from adbvoice.errors import exit_code_table
from tests.conftest import run_cli

README = (Path(__file__).parent.parent / "README.md").read_text()


def commands() -> list[str]:
    names = []
    for group in app.registered_groups:
        names += [c.name or c.callback.__name__ for c in group.typer_instance.registered_commands]
        if group.name:
            names.append(group.name)
    return names + [c.name or c.callback.__name__ for c in app.registered_commands]


def test_the_exit_code_table_in_readme_is_the_one_in_the_code():
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, re.MULTILINE))
    assert {int(code): text for code, text in rows.items()} == exit_code_table()


def test_every_command_is_documented_in_readme_and_has_an_example_in_its_help():
    for name in commands():
        assert f"adbvoice {name}" in README, name
        help_text = run_cli(*name.split(), "--help").stdout
        assert "Example: adbvoice" in " ".join(help_text.split()), name


def test_readme_starts_with_the_two_newcomer_commands():
    top = README[:1500]
    assert "pip install . && adbvoice demo" in top
    assert "\n.ci/test\n" in top
    assert ".ci/test" in (Path(__file__).parent.parent / ".ci" / "run").read_text()
