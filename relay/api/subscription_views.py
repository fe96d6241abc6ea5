"""Subscriptions as clients see them: `Integration` with links, masked config, status, access."""

from __future__ import annotations

from typing import Any

from relay.api.subscription_models import (
    Access,
    AccessAction,
    AccessReason,
    Integration,
    IntegrationSubscriptionStatusRep,
    Link,
    Statement,
)
from relay.api.subscription_redaction import redactor_for
from relay.store.subscriptions import SubscriptionRecord
from relay.store.tokens import Capability, TokenInfo
from relay.webhook_config import masked_config

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
    """The representation of one subscription for `caller` (secret masked unless revealed)."""
    config = masked_config(record.config)
    if reveal_secret:
        config["secret"] = record.secret
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
        status=IntegrationSubscriptionStatusRep.model_validate(_redacted(status, record)),
        access=access_for(caller, resource=f"integration/{record.integration_key}:{record.id}"),
    )


def _redacted(status: dict[str, Any], record: SubscriptionRecord) -> dict[str, Any]:
    """`status` with stored credentials masked in what receivers answered."""
    redact = redactor_for(record)
    errors = [
        {**error, "responseBody": redact(error["responseBody"])}
        if isinstance(error.get("responseBody"), str)
        else error
        for error in status.get("errors", [])
    ]
    return {**status, "errors": errors}


def editable_document(record: SubscriptionRecord) -> dict[str, Any]:
    """The fields a JSON Patch may change, as a client reads them (secret masked)."""
    return {
        "name": record.name,
        "config": masked_config(record.config),
        "statements": [dict(s) for s in record.statements],
        "on": record.on,
        "tags": list(record.tags),
    }


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
