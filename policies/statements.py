"""Policy statements: their model, validation from the wire form, and the wire form back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from policies.errors import FieldError, SpecifierError, StatementValidationError
from policies.globs import Glob
from policies.specifiers import ResourceSpecifier, parse_specifier

__all__ = ["Effect", "Statement", "parse_statements", "statement_to_dict"]

Effect = Literal["allow", "deny"]

_RESOURCE_KEYS = ("resources", "notResources")
_ACTION_KEYS = ("actions", "notActions")
_KNOWN_KEYS = ("effect", *_RESOURCE_KEYS, *_ACTION_KEYS)


@dataclass(frozen=True)
class Statement:
    """One parsed statement; exactly one of each resource and action pair is set."""

    effect: Effect
    resources: tuple[ResourceSpecifier, ...] | None = None
    not_resources: tuple[ResourceSpecifier, ...] | None = None
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    action_globs: tuple[Glob, ...] = field(init=False, repr=False, compare=False)
    specifiers: tuple[ResourceSpecifier, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Whichever of each pair is set, compiled once for evaluation.
        patterns = self.actions if self.actions is not None else self.not_actions or ()
        specifiers = self.resources if self.resources is not None else self.not_resources or ()
        object.__setattr__(self, "action_globs", tuple(Glob(pattern) for pattern in patterns))
        object.__setattr__(self, "specifiers", specifiers)


def parse_statements(
    raw: Sequence[Mapping[str, Any]] | None, *, attribute: str = "statements"
) -> list[Statement]:
    """Validate wire-form statements; raises `StatementValidationError` with every error."""
    if raw is None:
        return []
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
        raise StatementValidationError([FieldError(attribute, "must be a list of statements")])
    errors: list[FieldError] = []
    statements = [
        _Reader(f"{attribute}[{index}]", errors).statement(item) for index, item in enumerate(raw)
    ]
    if errors:
        raise StatementValidationError(errors)
    return [statement for statement in statements if statement is not None]


def statement_to_dict(statement: Statement) -> dict[str, Any]:
    """The wire form of a statement, with the original specifier strings."""
    wire: dict[str, Any] = {"effect": statement.effect}
    if statement.resources is not None:
        wire["resources"] = [specifier.text for specifier in statement.resources]
    if statement.not_resources is not None:
        wire["notResources"] = [specifier.text for specifier in statement.not_resources]
    if statement.actions is not None:
        wire["actions"] = list(statement.actions)
    if statement.not_actions is not None:
        wire["notActions"] = list(statement.not_actions)
    return wire


class _Reader:
    """Reads one statement, appending what is wrong with it to `errors`."""

    def __init__(self, attribute: str, errors: list[FieldError]) -> None:
        self.attribute = attribute
        self.errors = errors

    def fail(self, suffix: str, reason: str) -> None:
        self.errors.append(FieldError(f"{self.attribute}{suffix}", reason))

    def statement(self, raw: Any) -> Statement | None:
        if not isinstance(raw, Mapping):
            self.fail("", f"must be an object, got {_type_name(raw)}")
            return None
        before = len(self.errors)
        self._unknown_keys(raw)
        effect = self._effect(raw.get("effect"))
        resources = self._one_of(raw, _RESOURCE_KEYS, self._specifiers)
        actions = self._one_of(raw, _ACTION_KEYS, self._patterns)
        if len(self.errors) > before or effect is None:
            return None
        return Statement(
            effect=effect,
            resources=resources.get("resources"),
            not_resources=resources.get("notResources"),
            actions=actions.get("actions"),
            not_actions=actions.get("notActions"),
        )

    def _unknown_keys(self, raw: Mapping[Any, Any]) -> None:
        for key in raw:
            if key not in _KNOWN_KEYS:
                expected = ", ".join(_KNOWN_KEYS)
                self.fail(f".{key}", f"unknown field; expected one of {expected}")

    def _effect(self, value: Any) -> Effect | None:
        if value == "allow":
            return "allow"
        if value == "deny":
            return "deny"
        got = "nothing" if value is None else repr(value)
        self.fail(".effect", f"must be 'allow' or 'deny', got {got}")
        return None

    def _one_of(
        self, raw: Mapping[str, Any], keys: tuple[str, str], read: Callable[[str, Any], Any]
    ) -> dict[str, Any]:
        """Read whichever one of the two exclusive keys is present."""
        present = [key for key in keys if raw.get(key) is not None]
        if not present:
            self.fail(f".{keys[0]}", f"one of {keys[0]} or {keys[1]} is required")
        elif len(present) == 2:
            self.fail(f".{keys[1]}", f"cannot be given together with {keys[0]}; give one")
        return {key: read(key, raw[key]) for key in present}

    def _strings(self, key: str, value: Any) -> list[tuple[str, str]]:
        """The (attribute, string) items of a list field, reporting what is not."""
        if not isinstance(value, list):
            self.fail(f".{key}", f"must be a list of strings, got {_type_name(value)}")
            return []
        if not value:
            self.fail(f".{key}", "must not be empty")
        items = []
        for index, item in enumerate(value):
            if isinstance(item, str) and item:
                items.append((f".{key}[{index}]", item))
            else:
                reason = (
                    "must not be empty"
                    if item == ""
                    else f"must be a string, got {_type_name(item)}"
                )
                self.fail(f".{key}[{index}]", reason)
        return items

    def _specifiers(self, key: str, value: Any) -> tuple[ResourceSpecifier, ...]:
        parsed = []
        for suffix, text in self._strings(key, value):
            try:
                parsed.append(parse_specifier(text))
            except SpecifierError as error:
                self.fail(suffix, f"{error.reason} at position {error.position}")
        return tuple(parsed)

    def _patterns(self, key: str, value: Any) -> tuple[str, ...]:
        return tuple(text for _, text in self._strings(key, value))


def _type_name(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return names.get(type(value), type(value).__name__)
