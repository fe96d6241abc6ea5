"""Resource specifier grammar: what parses, and where the fault is in what does not."""

from __future__ import annotations

import pytest

from policies import Segment, SpecifierError, parse_specifier

MALFORMED: list[tuple[str, str, int]] = [
    ("", "expected a resource type", 0),
    (":proj/*", "expected a resource type", 0),
    ("proj/*:", "expected a resource type", 7),
    ("proj/*::env/*", "expected a resource type", 7),
    ("flg/*", "unknown resource type 'flg'", 0),
    ("proj/*:environment/*", "unknown resource type 'environment'", 7),
    ("Proj/*", "unknown resource type 'Proj'", 0),
    (" proj/*", "unknown resource type ' proj'", 0),
    ("proj", "expected '/' and a key after 'proj'", 4),
    ("proj;tag", "expected '/' and a key after 'proj'", 4),
    ("proj/*:env", "expected '/' and a key after 'env'", 10),
    ("proj/", "expected a key after 'proj/'", 5),
    ("proj/*:env/:flag/*", "expected a key after 'env/'", 11),
    ("proj/*:env/*;", "expected a tag or {attribute:value}", 13),
    ("proj/*:env/*:flag/*;a,,b", "expected a tag or {attribute:value}", 22),
    ("proj/*:env/*:flag/*;a,", "expected a tag or {attribute:value}", 22),
    ("proj/a{b}", "unexpected character in key 'a{b}'", 5),
    ("proj/a,b", "unexpected character in key 'a,b'", 5),
    ("proj/*:env/*:flag/*;a;b", "unexpected ';' in tag", 21),
    ("proj/*:env/*:flag/*;a}", "unexpected '}' in tag", 21),
    ("proj/*:env/*;{critical:true", "unclosed '{'", 13),
    ("proj/*:env/*;{critical}", "expected {attribute:value}", 13),
    ("proj/*:env/*;{color:red}", "unknown attribute 'color'; only 'critical'", 14),
    ("proj/*;{critical:true}", "attribute 'critical' applies only to env", 8),
    ("proj/*:env/*:flag/*;{critical:true}", "attribute 'critical' applies only to env", 21),
    ("proj/*:env/*;{critical:yes}", "attribute 'critical' must be true or false", 23),
    ("proj/*:env/*;{critical:True}", "attribute 'critical' must be true or false", 23),
    ("proj/*:env/*;{critical:true},{critical:false}", "attribute 'critical' given twice", 30),
    ("proj/*:env/*;{critical:true}x", "expected ',' or ':' after '}'", 28),
    ("proj/*:env/*;{critical:true}:bogus/*", "unknown resource type 'bogus'", 29),
]


@pytest.mark.parametrize(("text", "reason", "position"), MALFORMED)
def test_malformed_specifier_reports_reason_and_position(
    text: str, reason: str, position: int
) -> None:
    """A malformed specifier raises with what is wrong and its character offset."""
    with pytest.raises(SpecifierError) as caught:
        parse_specifier(text)

    assert (caught.value.reason, caught.value.position) == (reason, position)


WELL_FORMED: list[tuple[str, list[tuple[str, str, list[str], bool | None]]]] = [
    ("acct", [("acct", "*", [], None)]),
    ("acct/*", [("acct", "*", [], None)]),
    ("proj/*", [("proj", "*", [], None)]),
    ("member/*:token/*", [("member", "*", [], None), ("token", "*", [], None)]),
    (
        "proj/mobile-*:env/*;{critical:true}:flag/*;team-a,beta",
        [
            ("proj", "mobile-*", [], None),
            ("env", "*", [], True),
            ("flag", "*", ["team-a", "beta"], None),
        ],
    ),
    (
        "proj/*:env/*;{critical:false},blue:flag/x",
        [("proj", "*", [], None), ("env", "*", ["blue"], False), ("flag", "x", [], None)],
    ),
    (
        "proj/*:env/*:flag/*;simple:team-a",
        [("proj", "*", [], None), ("env", "*", [], None), ("flag", "*", ["simple:team-a"], None)],
    ),
    (
        "proj/*;simple:team-a:env/*:flag/*",
        [("proj", "*", ["simple:team-a"], None), ("env", "*", [], None), ("flag", "*", [], None)],
    ),
    (
        "proj/*;a:b:c,d:env/prod",
        [("proj", "*", ["a:b:c", "d"], None), ("env", "prod", [], None)],
    ),
    ("proj/*;x:acct", [("proj", "*", ["x"], None), ("acct", "*", [], None)]),
    ("proj/*;x:acctx", [("proj", "*", ["x:acctx"], None)]),
    ("proj/*;x:flag", [("proj", "*", ["x:flag"], None)]),
    ("integration/webhook/v2", [("integration", "webhook/v2", [], None)]),
]


@pytest.mark.parametrize(("text", "segments"), WELL_FORMED)
def test_well_formed_specifier_parses_into_segments(
    text: str, segments: list[tuple[str, str, list[str], bool | None]]
) -> None:
    """Segments, keys, tag items and the critical attribute come out as written."""
    parsed = parse_specifier(text)

    assert parsed.text == text
    assert [
        (s.type, s.key.pattern, [t.pattern for t in s.tags], s.critical) for s in parsed.segments
    ] == segments


def test_shape_is_the_segment_types() -> None:
    """A specifier's shape lists its segment types in order."""
    assert parse_specifier("proj/*:env/*;{critical:true}:flag/*;a").shape == ("proj", "env", "flag")


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [
        ("proj/*:env/*", [Segment("proj", "p"), Segment("env", "e")], True),
        ("proj/*:env/*", [Segment("proj", "p")], False),
        ("proj/*:env/*", [Segment("proj", "p"), Segment("env", "e"), Segment("flag", "f")], False),
        ("proj/*:env/*", [Segment("proj", "p"), Segment("segment", "s")], False),
    ],
)
def test_specifier_matches_resources_of_its_shape_only(
    text: str, resource: list[Segment], expected: bool
) -> None:
    """Called directly on segments, a specifier still requires the same shape."""
    assert parse_specifier(text).matches(resource, frozenset()) is expected
