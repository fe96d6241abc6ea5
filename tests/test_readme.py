"""The README stays true: every setting documented, every command listed, CI runs its line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from relay.cli.main import build_parser
from relay.settings import Settings
from tests.support import readme_block

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_configuration_table_lists_exactly_the_settings() -> None:
    """Each Settings field has a row (RELAY_<NAME>) in the Configuration table, and no other."""
    documented = set(
        re.findall(r"^\| `(RELAY_[A-Z_]+)` \|", _section("Configuration"), re.MULTILINE)
    )
    expected = {f"RELAY_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected


def test_cli_section_lists_every_command() -> None:
    """Every `relay` subcommand the parser knows appears in the CLI section."""
    parser = build_parser()
    # argparse has no public way to list subcommands
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    section = _section("CLI")
    for name in commands.choices:
        assert f"`relay {name}" in section, name


def test_quick_start_has_the_two_commands() -> None:
    """Quick start: (1) install and `relay up`, then (4) install the test extra and run
    pytest; in between, `relay listen` and an event (run by tests/relay/cli/test_quick_start.py)."""
    assert readme_block("quick-start: up") == (
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/relay up"
    )
    assert readme_block("quick-start: listen") == ".venv/bin/relay listen"
    assert readme_block("test-command") == (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"
        " && .venv/bin/pytest -n 3 --dist worksteal"
    )


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs exactly the README's test command."""
    printed = subprocess.run(
        [str(ROOT / ".ci" / "run"), "--print-command"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert printed == readme_block("test-command")


_ROW = re.compile(r"^\| `(RELAY_[A-Z_]+)` \| ([^|]*) \|", re.MULTILINE)
_NO_VALUE = ("unset", "empty")  # the words the table uses for a setting without a value


def _readme_defaults() -> dict[str, str]:
    """Each configuration row's default cell, by setting name (lower case, no prefix)."""
    rows = _ROW.findall(_section("Configuration"))
    return {variable.removeprefix("RELAY_").lower(): cell.strip() for variable, cell in rows}


def _documented_value(name: str, cell: str) -> object:
    """The value a README default cell stands for, read the way the environment would be."""
    if cell in _NO_VALUE:
        return None
    code = re.fullmatch(r"`([^`]*)`", cell)
    assert code, f"RELAY_{name.upper()}: default {cell!r} is neither `value`, unset nor empty"
    # the field's own validators read it, as they read RELAY_* (durations, lists, bools)
    return getattr(Settings.model_validate({name: code.group(1)}), name)


def test_configuration_defaults_are_the_settings_defaults() -> None:
    """Each README row's default is what Settings holds when its variable is unset."""
    wrong = {}
    for name, cell in _readme_defaults().items():
        field = Settings.model_fields.get(name)
        if field is None:
            continue  # an unknown row: the test above names it
        default = field.get_default(call_default_factory=True)
        default = None if default in ("", []) else default  # no value, as "unset"/"empty"
        documented = _documented_value(name, cell)
        if documented != default:
            wrong[f"RELAY_{name.upper()}"] = f"README {cell}, code {default!r}"
    assert wrong == {}
