"""Which subscriptions want which events: LaunchDarkly custom-role policies over Unleash events.

A pure library: parse and validate statements (`parse_statements`), map an Unleash
event to its resource and action names (`map_event`), evaluate (`matches`), and find
the matching subscriptions among many (`SubscriptionIndex`).
"""

from policies.catalog import UNLEASH_EVENT_TYPES, EventType
from policies.errors import FieldError, PolicyError, SpecifierError, StatementValidationError
from policies.evaluation import DEFAULT_CRITICAL_ENVIRONMENTS, matches
from policies.index import SubscriptionIndex
from policies.resources import RESOURCE_TYPES, Segment, Tag
from policies.specifiers import ResourceSpecifier, parse_specifier
from policies.statements import Statement, parse_statements, statement_to_dict
from policies.targets import EventTarget, map_event

__all__ = [
    "DEFAULT_CRITICAL_ENVIRONMENTS",
    "RESOURCE_TYPES",
    "UNLEASH_EVENT_TYPES",
    "EventTarget",
    "EventType",
    "FieldError",
    "PolicyError",
    "ResourceSpecifier",
    "Segment",
    "SpecifierError",
    "Statement",
    "StatementValidationError",
    "SubscriptionIndex",
    "Tag",
    "map_event",
    "matches",
    "parse_specifier",
    "parse_statements",
    "statement_to_dict",
]
