"""Validation shared by create and update: one document in, a storable subscription out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from policies import StatementValidationError, parse_statements, statement_to_dict
from relay.destinations import DestinationError, check_destination
from relay.errors import FieldProblem, InvalidRequestError, problems_from_validation
from relay.settings import Settings
from relay.subscriptions.config import validate_config
from relay.subscriptions.limits import policy_problems, size_problem
from relay.subscriptions.models import SubscriptionFields, SubscriptionPost


@dataclass(frozen=True)
class ValidSubscription:
    """What gets stored, and whether the relay generated the secret in this request."""

    name: str
    config: dict[str, Any]
    statements: list[dict[str, Any]]
    on: bool
    tags: list[str]
    secret_generated: bool


def fields_of(document: Mapping[str, Any]) -> SubscriptionFields:
    """A patched document checked for shape and types; 400 with every problem."""
    try:
        return SubscriptionFields.model_validate(document)
    except ValidationError as exc:
        raise invalid(problems_from_validation(list(exc.errors()))) from exc


def validate_subscription(
    fields: SubscriptionPost,
    *,
    stored_config: Mapping[str, Any] | None,
    settings: Settings,
) -> ValidSubscription:
    """Check limits, statements, config and destination together; 400 listing every problem."""
    problems = policy_problems(fields, settings)
    if problems:  # a policy past its limits is not parsed at all
        raise invalid(problems)
    statements = _statements(fields, problems)
    config: dict[str, Any] = {}
    generated = False
    try:
        checked = validate_config(fields.config, stored=stored_config)
        config, generated = checked.config, checked.secret_generated
    except InvalidRequestError as exc:
        problems.extend(exc.errors)
    if config and _url_changed(config, stored_config):
        _check_destination(config["url"], settings, problems)
    if not problems:
        document = {
            "name": fields.name,
            "config": config,
            "statements": statements,
            "on": fields.on,
            "tags": fields.tags,
        }
        too_large = size_problem(document, settings)
        problems += [too_large] if too_large is not None else []
    if problems:
        raise invalid(problems)
    return ValidSubscription(
        name=fields.name,
        config=config,
        statements=statements,
        on=fields.on,
        tags=fields.tags,
        secret_generated=generated,
    )


def invalid(problems: list[FieldProblem]) -> InvalidRequestError:
    message = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5]) or "invalid request"
    return InvalidRequestError(message, problems)


def _statements(fields: SubscriptionPost, problems: list[FieldProblem]) -> list[dict[str, Any]]:
    raw = [s.model_dump(exclude_none=True) for s in fields.statements or []]
    try:
        return [statement_to_dict(s) for s in parse_statements(raw)]
    except StatementValidationError as exc:
        problems.extend(FieldProblem(e.attribute, e.reason) for e in exc.errors)
        return []


def _url_changed(config: Mapping[str, Any], stored: Mapping[str, Any] | None) -> bool:
    return stored is None or stored.get("url") != config["url"]


def _check_destination(url: str, settings: Settings, problems: list[FieldProblem]) -> None:
    try:
        check_destination(url, settings=settings)
    except DestinationError as exc:
        problems.append(FieldProblem("config.url", exc.reason))
