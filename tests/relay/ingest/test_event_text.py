"""The free-text match of Unleash's event search: `ILIKE '%query%'` over the text
PostgreSQL holds for an event's data (json), tags (json) and preData (jsonb).

Each row was checked against PostgreSQL 15's own ILIKE over the same columns
(tests/relay/ingest/test_unleash_event_search_parity.py repeats that check when PostgreSQL
is there).
"""

from __future__ import annotations

from typing import Any

import pytest

from relay.ingest.event_text import TextQuery, jsonb_text, searched_texts

EVENT: dict[str, Any] = {
    "type": "feature-metadata-updated",
    "createdBy": "Alice",
    "project": "payments",
    "data": {"name": "École", "n": 1.5, "rate": "50% off", "path": "a\\b", "x": None},
    "preData": {"name": "old", "bb": 2, "a": {"cc": None, "b": True}},
    "tags": [{"value": "team-a", "type": "simple"}],
}

ROWS = [
    ("école", True),  # case folded beyond ASCII
    ("ÉCOLE", True),
    ('"name":"école"', True),  # data: compact, as JavaScript wrote it
    ('"name": "école"', False),
    ('"name": "old"', True),  # preData: jsonb's own text, spaced
    ('"name":"old"', False),
    ('{"a": {"b": true, "cc": null}, "bb": 2', True),  # jsonb: keys by length, then bytes
    ("team-a", True),  # tags
    ('[{"value":"team-a"', True),
    ("alice", False),  # createdBy is not searched
    ("payments", False),  # nor the project
    ("metadata", False),  # nor the type
    ("50\\% off", True),  # `\%` is a literal %
    ("50% off", True),  # `%` is any text: "50" then " off"
    ("5_%off", True),
    ("5_ off", False),  # `_` is exactly one character
    ("a\\\\b", False),  # `\\` is one literal backslash; the JSON text holds two
    ("a\\\\\\\\b", True),
    ("a\\b", False),  # `\b` is a literal b: "ab" is not in the text
    ("1.5", True),
    ("null", True),  # data's "x": null
    ("", True),
    ("%", True),
    ("école%old", False),  # one text at a time: never across data and preData
]


@pytest.mark.parametrize(("query", "expected"), ROWS)
def test_a_query_matches_as_postgresql_ilike_does(query: str, expected: bool) -> None:
    """Each row as PostgreSQL answers `data::text ILIKE ... OR tags::text ... OR pre_data...`."""
    compiled = TextQuery.compile(query)
    assert compiled.matches(EVENT) is expected


@pytest.mark.parametrize(("query", "expected"), ROWS)
def test_the_cheap_test_never_drops_a_match(query: str, expected: bool) -> None:
    """`may_match` on the stored JSON is true for every event `matches`."""
    compiled = TextQuery.compile(query)
    stored = (
        '{"id":3,"type":"feature-metadata-updated","createdBy":"Alice","project":"payments",'
        '"data":{"name":"École","n":1.5,"rate":"50% off","path":"a\\\\b","x":null},'
        '"preData":{"name":"old","bb":2,"a":{"cc":null,"b":true}},'
        '"tags":[{"value":"team-a","type":"simple"}],"source":"s"}'
    )
    assert compiled.may_match(stored) or not expected


def test_a_query_ending_in_a_backslash_never_matches() -> None:
    """`%100\\%`: the escaped closing % is literal and ends the text; no JSON text ends so."""
    event = {"data": "100%", "tags": [], "preData": {"p": "100%"}}
    assert TextQuery.compile("100%").matches(event)
    assert not TextQuery.compile("100\\").matches(event)
    assert not TextQuery.compile("\\").matches(event)


def test_texts_of_an_event_without_data_or_tags() -> None:
    """No data: nothing to match there (NULL); no tags: Unleash's column default `[]`."""
    assert searched_texts({"data": None, "preData": None}) == ["[]"]
    assert jsonb_text({"b": [1, {"bb": 1, "a": 2}], "aa": "é"}) == (
        '{"b": [1, {"a": 2, "bb": 1}], "aa": "é"}'
    )
