"""docs/integrations.md shows the render context as relay builds it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from policies import map_event
from relay.integrations.context import audit_entry

DOC = Path(__file__).resolve().parents[3] / "docs" / "integrations.md"
_EXAMPLE = re.compile(r"<!-- context example -->\n```json\n(.*?)\n```", re.DOTALL)


def _examples() -> list[dict[str, Any]]:
    return [json.loads(block) for block in _EXAMPLE.findall(DOC.read_text())]


def test_the_docs_show_an_example_of_each_other_kind() -> None:
    """The context examples cover project, environment and a kind with no template."""
    kinds = {example["context"]["kind"] for example in _examples()}
    assert {"project", "environment", "service-token"} <= kinds


@pytest.mark.parametrize("example", _examples(), ids=lambda e: e["event"]["type"])
def test_a_documented_context_is_what_relay_builds(example: dict[str, Any]) -> None:
    """Each documented field is what relay's context holds for the documented event."""
    event = example["event"]
    built = audit_entry(event, target=map_event(event), base_url="https://relay.example.com")
    assert {key: built[key] for key in example["context"]} == example["context"]
