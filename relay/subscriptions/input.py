"""Validation shared by create and update: one document in, a storable subscription out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from policies import StatementValidationError, parse_statements, statement_to_dict
from relay.destinations import (
    DestinationError,
    UnresolvableHostError,
    check_destination,
    reaches_listener,
)
from relay.errors import FieldProblem, InvalidRequestError, problems_from_validation
from relay.integrations.manifest import Manifest
from relay.settings import Settings
from relay.subscriptions.config import validate_config
from relay.subscriptions.integration_config import validate_form
from relay.subscriptions.limits import policy_problems, size_problem
from relay.subscriptions.models import Delivery, SubscriptionFields, SubscriptionPost

# what a delivery field means when it is not stored: today's unordered, unlimited sending
_DELIVERY_DEFAULTS = Delivery().model_dump()


@dataclass(frozen=True)
class ValidSubscription:
    """What gets stored, and whether the relay generated the secret in this request."""

    name: str
    config: dict[str, Any]
    statements: list[dict[str, Any]]
    on: bool
    tags: list[str]
    secret_generated: bool
    # `delivery` as stored: only the fields set to something other than their default
    delivery: dict[str, Any] = field(default_factory=dict)


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
    manifest: Manifest | None = None,
    local_listener: str | None = None,
) -> ValidSubscription:
    """Check limits, statements, config and destination together; 400 listing every problem.

    `manifest` is the integration's (None: relay's own `webhook`); without statements a
    new subscription to it takes the manifest's `defaultPolicy`, and a delivery field its
    client leaves out takes the manifest's `deliveryDefaults`. `local_listener` (the CLI's
    `relay listen` only) is the loopback origin its URL may point at past the guard."""
    problems = policy_problems(fields, settings)
    if problems:  # a policy past its limits is not parsed at all
        raise invalid(problems)
    if manifest is not None and fields.statements is None and stored_config is None:
        statements = list(manifest.default_policy)
    else:
        statements = _statements(fields, problems)
    config: dict[str, Any] = {}
    generated = False
    destination = ""
    try:
        if manifest is None:
            checked = validate_config(fields.config, stored=stored_config)
            config, generated = checked.config, checked.secret_generated
            destination = config["url"] if _url_changed(config, stored_config) else ""
        else:
            config, rendered = validate_form(manifest, fields.config, stored=stored_config)
            destination = rendered.url if config != stored_config else ""
    except InvalidRequestError as exc:
        problems.extend(exc.errors)
    if destination and not reaches_listener(destination, local_listener):
        _check_destination(destination, settings, problems)
    delivery = _delivery(fields.delivery, manifest, creating=stored_config is None)
    if not problems:
        document = {
            "name": fields.name,
            "config": config,
            "statements": statements,
            "on": fields.on,
            "tags": fields.tags,
            **({"delivery": delivery} if delivery else {}),
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
        delivery=delivery,
    )


def invalid(problems: list[FieldProblem]) -> InvalidRequestError:
    message = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5]) or "invalid request"
    return InvalidRequestError(message, problems)


def _delivery(
    given: Delivery | None, manifest: Manifest | None, *, creating: bool
) -> dict[str, Any]:
    """The delivery fields to store: at create the manifest's defaults under the client's
    fields; then only those that differ from the defaults (an explicit null clears a limit)."""
    fields = given.given() if given is not None else {}
    if creating and manifest is not None:
        fields = {**manifest.delivery_defaults, **fields}
    return {name: value for name, value in fields.items() if value != _DELIVERY_DEFAULTS.get(name)}


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
    except UnresolvableHostError:
        # accepted, as LaunchDarkly and Svix accept it: the name may resolve by delivery
        # time, where the guard checks every address again (and an unresolvable name is
        # retried)
        pass
    except DestinationError as exc:
        problems.append(FieldProblem("config.url", exc.reason))
