"""Unleash 8's `label` and `summary` of an event, as its event search answers them.

Unleash describes each event it returns from `GET /api/admin/search/events` with a short
label ("Flag enabled") and a markdown sentence ("**admin** enabled **[demo.flag](...)**
for the **production** environment in project **[default](...)**"), with links into the
Unleash server's UI. This module writes the same two strings for a recorded event, as
Unleash 8.2 would for that event in its own database: a field the event lacks counts as
the `null` Unleash's table would hold, and values read into the text the way JavaScript
writes them (`String(value)`: arrays joined with commas, numbers as JavaScript prints
them). Where Unleash's formatter throws on malformed data (a strategy's `constraints` set
to `null`, say) and fails the whole search, the value is read as empty instead.

The sentences per event type are in relay/ingest/event_sentences.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from relay.ingest.event_sentences import SENTENCES

B: Final = "**"  # markdown bold
DEFAULT_UNLEASH_URL: Final = "http://localhost:4242"  # Unleash's own default UNLEASH_URL


class _Missing:
    """A property JavaScript reads as `undefined` (absent), as opposed to `null`."""

    def __repr__(self) -> str:
        return "undefined"


MISSING: Final = _Missing()

# columns every event of Unleash's table has: absent in a recorded event = NULL there
_COLUMNS: Final = ("featureName", "project", "environment", "data", "preData", "createdByUserId")


@dataclass(frozen=True)
class Described:
    label: str
    summary: str


# --- JavaScript's reading of JSON values ---------------------------------------------------


def truthy(value: Any) -> bool:
    """JavaScript's truthiness of a JSON value (objects and arrays are true, even empty)."""
    if value is MISSING or value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def js_number(value: float) -> str:
    """A number as JavaScript's `String(n)` writes it: the shortest digits that round-trip
    (as Python's repr), in fixed notation from 1e-6 up to 1e21, else `1.5e-7`, `1e+21`."""
    if isinstance(value, int) and abs(value) <= 2**53:  # exact in a double too
        return str(value)
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if number == 0:
        return "0"
    shortest = Decimal(repr(abs(number))).normalize()
    digits = "".join(map(str, shortest.as_tuple().digits))
    point = len(digits) + int(shortest.as_tuple().exponent)  # value = 0.digits x 10^point
    sign = "-" if number < 0 else ""
    if len(digits) <= point <= 21:
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    if 0 < point <= 21:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    fraction = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{fraction}e{'+' if point > 0 else '-'}{abs(point - 1)}"


def js_str(value: Any) -> str:
    """JavaScript's `String(value)` of a JSON value other than null and undefined."""
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, list):
        return ",".join(_joined(item) for item in value)
    return "[object Object]"


def _joined(value: Any) -> str:
    """An array element as `Array.prototype.join` writes it: null and undefined are ''."""
    return "" if value is None or value is MISSING else js_str(value)


def js_template(value: Any) -> str:
    """A value interpolated into a JavaScript template literal: `${value}`."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    return js_str(value)


def mustache(value: Any) -> str:
    """A value as Unleash's Mustache templates render it (unescaped): null and undefined are ''."""
    return "" if value is None or value is MISSING else js_str(value)


def prop(value: Any, name: str) -> Any:
    """`value?.name` in JavaScript, for a JSON value: MISSING unless an object has it."""
    if isinstance(value, Mapping):
        return value.get(name, MISSING)
    return MISSING


def either(*values: Any) -> Any:
    """JavaScript's `a || b || ...`: the first truthy value, else the last one."""
    for value in values[:-1]:
        if truthy(value):
            return value
    return values[-1]


def same(a: Any, b: Any) -> bool:
    """JavaScript's `a === b` for JSON values: objects and arrays are never the same."""
    if a is MISSING or b is MISSING or a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def bold(value: Any) -> str:
    """Bold text, or the bare marker when the value is falsy (as Unleash's formatter does)."""
    return f"{B}{js_template(value)}{B}" if truthy(value) else B


# --- the event's parts ----------------------------------------------------------------------


class _Event:
    """One event read as Unleash's formatter reads a row of its events table."""

    def __init__(self, event: Mapping[str, Any], unleash_url: str) -> None:
        self.raw = event
        self.url = unleash_url
        self.type = event.get("type", MISSING)
        self.created_by = event.get("createdBy", MISSING)
        fields = {name: event.get(name) for name in _COLUMNS}
        self.feature = fields["featureName"]
        self.project = fields["project"]
        self.environment = fields["environment"]
        self.data = fields["data"]
        self.pre_data = fields["preData"]

    def path(self, dotted: str) -> Any:
        """A Mustache `{{event.a.b}}` lookup: MISSING when any step is not an object's field."""
        first, *rest = dotted.split(".")
        value = self.raw.get(first) if first in _COLUMNS else self.raw.get(first, MISSING)
        for name in rest:
            value = prop(value, name)
        return value

    def feature_url(self) -> str:
        if self.type == "feature-archived":
            if truthy(self.project):
                return f"{self.url}/projects/{js_template(self.project)}/archive"
            return f"{self.url}/archive"
        # Unleash's `project = ''` default applies to undefined only; its rows hold null
        return f"{self.url}/projects/{js_template(self.project)}/features/{js_str(self.feature)}"

    def feature_link(self) -> str | None:
        if not truthy(self.feature):
            return None
        return f"[{js_str(self.feature)}]({self.feature_url()})"

    def project_link(self) -> str | None:
        if not truthy(self.project):
            return None
        project = js_str(self.project)
        return f"[{project}]({self.url}/projects/{project})"

    def change_request(self) -> str | None:
        request_id = either(
            prop(self.data, "changeRequestId"), prop(self.pre_data, "changeRequestId")
        )
        if not (truthy(self.project) and truthy(request_id)):
            return None
        project, number = js_str(self.project), js_str(request_id)
        url = f"{self.url}/projects/{project}/change-requests/{number}"
        feature = self.feature_link()
        text = bold(f"[#{number}]({url})")
        if feature:
            text += f" for feature flag {bold(feature)}"
        if truthy(self.environment):
            text += f" in the {bold(self.environment)} environment"
        return f"{text} in project {bold(self.project_link())}"

    def strategy_title(self) -> Any:
        return either(
            prop(self.pre_data, "title"),
            prop(self.data, "title"),
            prop(self.pre_data, "name"),
            prop(self.data, "name"),
        )

    def strategy_change(self) -> str | None:
        if self.type != "feature-strategy-update":
            return None
        subject = either(self.data, self.pre_data)
        if not truthy(subject):
            return None
        name = prop(subject, "name")
        changes = _STRATEGY_CHANGES.get(name) if isinstance(name, str) else None
        parts = changes(self) if changes else []
        updated = f"by updating strategy {bold(self.strategy_title())} in {bold(self.environment)}"
        return updated + ";".join(part for part in parts if part)


# --- strategy changes ------------------------------------------------------------------------

_OPERATORS: Final = {
    "IN": "is one of",
    "NOT_IN": "is not one of",
    "STR_CONTAINS": "is a string that contains",
    "STR_STARTS_WITH": "is a string that starts with",
    "STR_ENDS_WITH": "is a string that ends with",
    "NUM_EQ": "is a number equal to",
    "NUM_GT": "is a number greater than",
    "NUM_GTE": "is a number greater than or equal to",
    "NUM_LT": "is a number less than",
    "NUM_LTE": "is a number less than or equal to",
    "DATE_BEFORE": "is a date before",
    "DATE_AFTER": "is a date after",
    "SEMVER_EQ": "is a SemVer equal to",
    "SEMVER_GT": "is a SemVer greater than",
    "SEMVER_LT": "is a SemVer less than",
    "SEMVER_GTE": "is a SemVer greater than or equal to",
    "SEMVER_LTE": "is a SemVer less than or equal to",
    "REGEX": "matches regex",
}


def _items(value: Any) -> list[Any]:
    # an absent list defaults to empty in Unleash; null or a non-list makes it throw
    return value if isinstance(value, list) else []


def _constraint(constraint: Any) -> str:
    if not isinstance(constraint, Mapping):
        constraint = {}
    if "value" in constraint:
        value = js_template(constraint["value"])
    else:
        values = constraint.get("values", MISSING)
        joined = ",".join(map(_joined, values)) if isinstance(values, list) else "undefined"
        value = f"({joined})"
    operator = constraint.get("operator", MISSING)
    if isinstance(operator, str) and operator in _OPERATORS:
        operator = _OPERATORS[operator]
    negation = "not " if truthy(constraint.get("inverted", MISSING)) else ""
    context = js_template(constraint.get("contextName", MISSING))
    return f"{context} {negation}{js_template(operator)} {value}"


def _constraints_text(constraints: Any) -> str:
    listed = _items(constraints)
    if not listed:
        return "empty set of constraints"
    return f"[{', '.join(map(_constraint, listed))}]"


def _segments_text(segments: Any) -> str:
    listed = _items(segments)
    return f"({','.join(map(_joined, listed))})" if listed else "empty set of segments"


def _from_to(what: str, old_text: str, new_text: str) -> str:
    return "" if old_text == new_text else f" {what} from {old_text} to {new_text}"


def _constraint_and_segment_changes(event: _Event) -> list[str]:
    before, after = event.pre_data, event.data
    return [
        _from_to(
            "constraints",
            _constraints_text(prop(before, "constraints")),
            _constraints_text(prop(after, "constraints")),
        ),
        _from_to(
            "segments",
            _segments_text(prop(before, "segments")),
            _segments_text(prop(after, "segments")),
        ),
    ]


def _parameter_change(name: str, old: Any, new: Any, *, unit: str = "") -> str:
    if same(old, new):
        return ""
    if not truthy(old):
        return f" {name} to {js_template(new)}{unit}"
    return f" {name} from {js_template(old)}{unit} to {js_template(new)}{unit}"


def _rollout_changes(event: _Event) -> list[str]:
    before = either(prop(event.pre_data, "parameters"), {})
    after = either(prop(event.data, "parameters"), {})
    return [
        _parameter_change("stickiness", prop(before, "stickiness"), prop(after, "stickiness")),
        _parameter_change("rollout", prop(before, "rollout"), prop(after, "rollout"), unit="%"),
        _parameter_change("groupId", prop(before, "groupId"), prop(after, "groupId")),
        *_constraint_and_segment_changes(event),
    ]


def _listed(values: Any, name: str) -> str:
    if isinstance(values, str | list) and len(values) == 0:
        return f"empty set of {name}"
    return f"[{js_template(values)}]"


def _list_changes(name: str) -> Callable[[_Event], list[str]]:
    def changes(event: _Event) -> list[str]:
        old = prop(prop(event.pre_data, "parameters"), name)
        new = prop(prop(event.data, "parameters"), name)
        if same(old, new):
            values = ""
        elif not truthy(event.pre_data):
            values = f" {name} to {_listed(new, name)}"
        else:
            values = f" {name} from {_listed(old, name)} to {_listed(new, name)}"
        return [values, *_constraint_and_segment_changes(event)]

    return changes


_STRATEGY_CHANGES: Final[dict[str, Callable[[_Event], list[str]]]] = {
    "flexibleRollout": _rollout_changes,
    "default": _constraint_and_segment_changes,
    "remoteAddress": _list_changes("IPs"),
    "applicationHostname": _list_changes("hostNames"),
}


# --- labels and sentences --------------------------------------------------------------------


_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_.]+)\}")


def _render(template: str, event: _Event) -> str:
    named: dict[str, Callable[[], Any]] = {
        "user": lambda: event.created_by,
        "feature": event.feature_link,
        "project": event.project_link,
        "change_request": event.change_request,
        "strategy_title": event.strategy_title,
        "strategy_change": event.strategy_change,
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("event."):
            return mustache(event.path(name.removeprefix("event.")))
        return mustache(named[name]())

    return _PLACEHOLDER.sub(value, template)


def describe(event: Mapping[str, Any], *, unleash_url: str = DEFAULT_UNLEASH_URL) -> Described:
    """The label and markdown summary Unleash 8.2's event search gives `event`; links go to
    `unleash_url` (the Unleash server the event came from)."""
    read = _Event(event, unleash_url)
    known = SENTENCES.get(read.type) if isinstance(read.type, str) else None
    if known is None:
        # an event type without a sentence of its own: its author triggered it
        return Described(
            js_template(read.type), f"{bold(read.created_by)} triggered {bold(read.type)}"
        )
    label, template = known
    return Described(label, _render(template, read))
