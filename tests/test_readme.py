"""The README stays true: every setting documented, every command listed, CI runs its line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from relay.cli import build_parser
from relay.settings import Settings

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
    """Quick start: (1) install and `relay up`, (2) install the test extra and run pytest."""
    section = _section("Quick start")
    blocks = re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)
    assert blocks == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/relay up",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs exactly the README's second quick-start command."""
    printed = subprocess.run(
        [str(ROOT / ".ci" / "run"), "--print-command"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    section = _section("Quick start")
    assert printed == re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)[1]
