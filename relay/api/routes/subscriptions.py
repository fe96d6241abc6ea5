"""Audit-log subscriptions, served as LaunchDarkly serves them under /api/v2/integrations."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from relay.api.deps import ReaderDep, SettingsDep, StoreDep, WriterDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.api.subscription_input import ValidSubscription, fields_of, validate_subscription
from relay.api.subscription_models import (
    Integration,
    Integrations,
    Link,
    PatchOperation,
    PatchWithComment,
    SubscriptionPost,
)
from relay.api.subscription_views import (
    collection_href,
    editable_document,
    integration_of,
    item_href,
)
from relay.errors import NotFoundError
from relay.store import subscription_status, subscriptions
from relay.store.subscriptions import SubscriptionRecord
from relay.store.tokens import TokenInfo
from relay.subscription_patch import apply_patch, patch_operations
from relay.webhook_config import INTEGRATION_KEY

router = APIRouter(prefix="/api/v2/integrations", tags=["subscriptions"], responses=AUTH_ERRORS)

_OPERATION = PatchOperation.model_json_schema(by_alias=True)
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"type": "array", "items": _OPERATION},
                        {
                            "type": "object",
                            "title": PatchWithComment.__name__,
                            "required": ["patch"],
                            "properties": {
                                "comment": {"type": "string"},
                                "patch": {"type": "array", "items": _OPERATION},
                            },
                        },
                    ]
                }
            }
        },
    }
}


@router.post(
    "/{integrationKey}",
    status_code=201,
    response_model=Integration,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def create_subscription(
    integrationKey: str,
    body: SubscriptionPost,
    response: Response,
    client: StoreDep,
    settings: SettingsDep,
    caller: WriterDep,
) -> Integration:
    """Create an audit-log subscription; a generated secret is shown in this answer only."""
    _check_integration(integrationKey)
    valid = validate_subscription(body, stored_config=None, settings=settings)
    record = subscriptions.create_subscription(
        client,
        integration_key=integrationKey,
        name=valid.name,
        config=valid.config,
        statements=valid.statements,
        on=valid.on,
        tags=valid.tags,
    )
    response.headers["Location"] = item_href(integrationKey, record.id)
    return _view(client, record, caller, reveal_secret=valid.secret_generated)


@router.get(
    "/{integrationKey}",
    response_model=Integrations,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def get_subscriptions(integrationKey: str, client: StoreDep, caller: ReaderDep) -> Integrations:
    """List the audit-log subscriptions of an integration, oldest first."""
    _check_integration(integrationKey)
    records = subscriptions.list_subscriptions(client, integration_key=integrationKey)
    statuses = subscription_status.get_statuses(client, sub_ids=[r.id for r in records])
    items = [integration_of(r, status=statuses[r.id], caller=caller) for r in records]
    return Integrations(
        links={"self": Link(href=collection_href(integrationKey))},
        items=items,
        key=integrationKey,
    )


@router.get(
    "/{integrationKey}/{id}",
    response_model=Integration,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def get_subscription_by_id(
    integrationKey: str, id: str, client: StoreDep, caller: ReaderDep
) -> Integration:
    """Get one audit-log subscription."""
    return _view(client, _find(client, integrationKey, id), caller)


@router.patch(
    "/{integrationKey}/{id}",
    response_model=Integration,
    response_model_exclude_none=True,
    responses=error_responses(404, 409),
    openapi_extra=_PATCH_BODY,
)
def update_subscription(
    integrationKey: str,
    id: str,
    body: Annotated[Any, Body()],
    client: StoreDep,
    settings: SettingsDep,
    caller: WriterDep,
) -> Integration:
    """Update an audit-log subscription with a JSON Patch (optionally in a comment envelope)."""
    _find(client, integrationKey, id)
    operations, prefix = patch_operations(body)
    generated: list[bool] = []

    def change(record: SubscriptionRecord) -> SubscriptionRecord:
        patched = apply_patch(editable_document(record), operations, prefix=prefix)
        valid = validate_subscription(
            fields_of(patched), stored_config=record.config, settings=settings
        )
        generated[:] = [valid.secret_generated]
        return _updated(record, valid)

    updated = subscriptions.update_subscription(client, sub_id=id, change=change)
    if updated is None:
        raise _not_found(id)
    return _view(client, updated, caller, reveal_secret=any(generated))


@router.delete("/{integrationKey}/{id}", status_code=204, responses=error_responses(404))
def delete_subscription(integrationKey: str, id: str, client: StoreDep, _: WriterDep) -> Response:
    """Delete an audit-log subscription and its delivery status."""
    _find(client, integrationKey, id)
    if not subscriptions.delete_subscription(client, sub_id=id):
        raise _not_found(id)
    return Response(status_code=204)


def _check_integration(integration_key: str) -> None:
    if integration_key != INTEGRATION_KEY:
        raise NotFoundError(
            f"unknown integration {integration_key}; the relay supports {INTEGRATION_KEY}"
        )


def _find(client: StoreDep, integration_key: str, sub_id: str) -> SubscriptionRecord:
    _check_integration(integration_key)
    record = subscriptions.get_subscription(client, sub_id=sub_id)
    if record is None or record.integration_key != integration_key:
        raise _not_found(sub_id)
    return record


def _not_found(sub_id: str) -> NotFoundError:
    return NotFoundError(f"no subscription {sub_id}")


def _updated(record: SubscriptionRecord, valid: ValidSubscription) -> SubscriptionRecord:
    return replace(
        record,
        name=valid.name,
        config=valid.config,
        statements=valid.statements,
        on=valid.on,
        tags=valid.tags,
    )


def _view(
    client: StoreDep, record: SubscriptionRecord, caller: TokenInfo, *, reveal_secret: bool = False
) -> Integration:
    status = subscription_status.get_status(client, sub_id=record.id)
    return integration_of(record, status=status, caller=caller, reveal_secret=reveal_secret)
