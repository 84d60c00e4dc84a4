"""What README promises matches what the code does."""

import re
from pathlib import Path

from adbvoice.cli import app
from adbvoice.errors import exit_code_table
from tests.conftest import run_cli

README = (Path(__file__).parent.parent / "README.md").read_text()


def commands(typer_app=app, prefix="") -> list[str]:
    """Every leaf command, sub-groups spelled out: "backup", "catalog rebuild", ..."""
    names = [prefix + (c.name or c.callback.__name__) for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        names += commands(group.typer_instance, prefix + (f"{group.name} " if group.name else ""))
    return names


def test_the_exit_code_table_in_readme_is_the_one_in_the_code():
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, re.MULTILINE))
    assert {int(code): text for code, text in rows.items()} == exit_code_table()


def test_every_command_is_documented_in_readme_and_has_an_example_in_its_help():
    overview = " ".join(run_cli("--help").stdout.split())
    for name in commands():
        assert f"adbvoice {name}" in README, name
        help_text = " ".join(run_cli(*name.split(), "--help").stdout.split())
        assert "Example: adbvoice" in help_text, name
        example = help_text.split("Example: ", 1)[1].split(" ╭")[0].strip()
        assert example in overview, f"`adbvoice --help` lacks the example of {name}"


def test_readme_starts_with_the_two_newcomer_commands():
    top = README[:1500]
    assert "pip install . && adbvoice demo" in top
    assert "\n.ci/test\n" in top
    assert ".ci/test" in (Path(__file__).parent.parent / ".ci" / "run").read_text()
