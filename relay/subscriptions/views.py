"""Subscriptions as clients see them: `Integration` with links, masked config, status, access."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from relay.store.subscriptions import SubscriptionRecord
from relay.store.tokens import Capability, TokenInfo
from relay.subscriptions.config import INTEGRATION_KEY, masked_config
from relay.subscriptions.integration_config import masked_form
from relay.subscriptions.models import (
    Access,
    AccessAction,
    AccessReason,
    Delivery,
    Integration,
    IntegrationSubscriptionStatusRep,
    Link,
    Statement,
)
from relay.subscriptions.redaction import Redactor, redactor_for
from relay.subscriptions.urls import MASK

# LaunchDarkly's action names for an integration; the relay's `write` capability grants them all
ACTIONS = (
    "createIntegration",
    "deleteIntegration",
    "updateConfiguration",
    "updateName",
    "updateOn",
    "updatePolicy",
    "updateTags",
)


def collection_href(integration_key: str) -> str:
    return f"/api/v2/integrations/{integration_key}"


def item_href(integration_key: str, sub_id: str) -> str:
    return f"{collection_href(integration_key)}/{sub_id}"


def integration_of(
    record: SubscriptionRecord,
    *,
    status: dict[str, Any],
    caller: TokenInfo,
    reveal_secret: bool = False,
) -> Integration:
    """The representation of one subscription for `caller` (secret masked unless revealed).

    Readers see less than writers (docs/subscriptions.md, "What each role sees"): the URL's
    origin only, since a webhook URL's path is often its credential (Slack, Discord, Teams),
    and no receiver text in `_status.errors`, since it may echo a credential in a form the
    redaction does not know. Writers, who set the credentials, get both with them masked.
    """
    trusted = caller.can(Capability.WRITE)
    config = shown_config(record)
    if reveal_secret:
        config["secret"] = record.secret
    if (
        not trusted
        and record.integration_key == INTEGRATION_KEY
        and isinstance(config.get("url"), str)
    ):
        config["url"] = origin_url(config["url"])
    return Integration(
        links={
            "self": Link(href=item_href(record.integration_key, record.id)),
            "parent": Link(href=collection_href(record.integration_key)),
        },
        id=record.id,
        kind=record.integration_key,
        name=record.name,
        config=config,
        statements=[Statement.model_validate(s) for s in record.statements],
        on=record.on,
        tags=record.tags,
        delivery=shown_delivery(record),
        status=IntegrationSubscriptionStatusRep.model_validate(
            _shown_status(status, record, with_text=trusted)
        ),
        access=access_for(caller, resource=f"integration/{record.integration_key}:{record.id}"),
    )


def shown_config(record: SubscriptionRecord) -> dict[str, Any]:
    """The config as every answer shows it: credentials masked."""
    if record.integration_key == INTEGRATION_KEY:
        return masked_config(record.config)
    return masked_form(record.secret_fields, record.config)


def origin_url(url: str) -> str:
    """`https://hooks.slack.com/services/T0/B0/x?a=1` -> `https://hooks.slack.com/********`:
    the origin, and one mask for whatever follows it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if parts.path in ("", "/") and not parts.query and not parts.fragment:
        return origin + parts.path
    return f"{origin}/{MASK}"


def _shown_status(
    status: dict[str, Any], record: SubscriptionRecord, *, with_text: bool
) -> dict[str, Any]:
    """`status` with receiver text masked (`with_text`) or left out (readers), and the
    listener mark of a `relay listen` subscription."""
    if record.local_listener:
        status = {**status, "localListener": record.local_listener}
    held = status.get("heldBack")
    if held:  # a held key's head may be failing with the receiver's words in its reason
        redact = redactor_for(record)
        status = {**status, "heldBack": [_shown_held(key, redact, with_text) for key in held]}
    errors: list[dict[str, Any]] = status.get("errors", [])
    reason = status.get("disabledReason")
    if not with_text:
        errors = [{k: v for k, v in error.items() if k != "responseBody"} for error in errors]
    if not (errors and with_text) and not isinstance(reason, str):
        return {**status, "errors": errors}
    redact = redactor_for(record)
    if with_text:
        errors = [_redacted_error(error, redact) for error in errors]
    if isinstance(reason, str):  # the relay's own words, but it may quote what it refused
        status = {**status, "disabledReason": redact(reason)}
    return {**status, "errors": errors}


def _shown_held(held: dict[str, Any], redact: Redactor, with_text: bool) -> dict[str, Any]:
    reason = held.get("headReason")
    if not isinstance(reason, str):
        return held
    return {**held, "headReason": redact(reason) if with_text else None}


def _redacted_error(error: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    body = error.get("responseBody")
    return {**error, "responseBody": redact(body)} if isinstance(body, str) else error


def editable_document(record: SubscriptionRecord) -> dict[str, Any]:
    """The fields a JSON Patch may change, as a client reads them (secret masked)."""
    return {
        "name": record.name,
        "config": shown_config(record),
        "statements": [dict(s) for s in record.statements],
        "on": record.on,
        "tags": list(record.tags),
        # every field, defaults included, so that `replace /delivery/ordering` has a target
        "delivery": shown_delivery(record).model_dump(),
    }


def shown_delivery(record: SubscriptionRecord) -> Delivery:
    """The stored delivery settings over the defaults; a stored value no longer valid
    (written by hand, or under other bounds) shows as its default rather than failing."""
    shown = Delivery()
    for name, value in record.delivery.items():
        try:
            shown = Delivery.model_validate({**shown.given(), name: value})
        except ValueError:
            continue
    return shown


def access_for(caller: TokenInfo, *, resource: str) -> Access:
    """LaunchDarkly's `_access`: each action allowed or denied, with the role's reason."""
    allowed = caller.can(Capability.WRITE)
    reason = AccessReason(
        effect="allow" if allowed else "deny",
        resources=[resource],
        actions=["*"] if allowed else list(ACTIONS),
        role_name=caller.role.value,
    )
    actions = [AccessAction(action=action, reason=reason) for action in ACTIONS]
    return Access(allowed=actions, denied=[]) if allowed else Access(allowed=[], denied=actions)
