"""The public surface of `policies` is exactly the intended names."""

from __future__ import annotations

import policies

INTENDED = {
    # the surface other packages code against
    "EventTarget",
    "FieldError",
    "PolicyError",
    "Statement",
    "StatementValidationError",
    "SubscriptionIndex",
    "UNLEASH_EVENT_TYPES",
    "map_event",
    "matches",
    "parse_statements",
    "statement_to_dict",
    # additions
    "DEFAULT_CRITICAL_ENVIRONMENTS",
    "EventType",
    "RESOURCE_TYPES",
    "ResourceSpecifier",
    "Segment",
    "SpecifierError",
    "Tag",
    "parse_specifier",
}


def test_all_lists_exactly_the_intended_names() -> None:
    """`policies.__all__` is the intended public API, without duplicates."""
    assert sorted(policies.__all__) == sorted(INTENDED)
    assert len(policies.__all__) == len(set(policies.__all__))


def test_every_exported_name_is_defined_in_policies() -> None:
    """Every exported member exists and, where it has one, names a policies module."""
    for name in policies.__all__:
        member = getattr(policies, name)
        module = getattr(member, "__module__", "policies")
        assert module.startswith("policies"), name


def test_errors_share_one_root() -> None:
    """Every policies exception derives from PolicyError."""
    assert issubclass(policies.StatementValidationError, policies.PolicyError)
    assert issubclass(policies.SpecifierError, policies.PolicyError)
