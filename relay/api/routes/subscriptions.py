"""Audit-log subscriptions, served as LaunchDarkly serves them under /api/v2/integrations."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from relay.api.deps import CatalogDep, ReaderDep, SettingsDep, StoreDep, WriterDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.errors import FieldProblem, InvalidRequestError, NotFoundError
from relay.integrations.catalog import Catalog
from relay.integrations.manifest import Manifest
from relay.store import subscription_status, subscriptions
from relay.store.subscriptions import (
    SubscriptionRecord,
    TooManyPolicyEntriesError,
    TooManySubscriptionsError,
)
from relay.store.tokens import TokenInfo
from relay.subscriptions.input import ValidSubscription, fields_of, validate_subscription
from relay.subscriptions.models import (
    Integration,
    Integrations,
    Link,
    PatchOperation,
    PatchWithComment,
    SubscriptionPost,
)
from relay.subscriptions.patch import apply_patch, patch_operations
from relay.subscriptions.views import (
    collection_href,
    editable_document,
    integration_of,
    item_href,
)

router = APIRouter(prefix="/api/v2/integrations", tags=["subscriptions"], responses=AUTH_ERRORS)

# a page of subscriptions: each is at most RELAY_MAX_SUBSCRIPTION_BYTES plus its `_status`
MAX_PAGE = 100
MAX_OFFSET = 10**9

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
    catalog: CatalogDep,
    caller: WriterDep,
) -> Integration:
    """Create an audit-log subscription; a generated secret is shown in this answer only."""
    manifest = _manifest(catalog, integrationKey)
    valid = validate_subscription(body, stored_config=None, settings=settings, manifest=manifest)
    try:
        record = subscriptions.create_subscription(
            client,
            integration_key=integrationKey,
            name=valid.name,
            config=valid.config,
            statements=valid.statements,
            on=valid.on,
            tags=valid.tags,
            max_count=settings.max_subscriptions,
            max_entries=settings.max_total_policy_entries,
            secret_fields=_secret_fields(manifest),
            delivery=valid.delivery,
        )
    except TooManySubscriptionsError as exc:
        reason = f"{exc.limit} subscriptions exist, the most RELAY_MAX_SUBSCRIPTIONS allows"
        raise InvalidRequestError(reason, [FieldProblem("body", reason)]) from exc
    except TooManyPolicyEntriesError as exc:
        raise _over_total_entries(exc) from exc
    response.headers["Location"] = item_href(integrationKey, record.id)
    return _view(client, record, caller, reveal_secret=valid.secret_generated)


@router.get(
    "/{integrationKey}",
    response_model=Integrations,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def get_subscriptions(
    integrationKey: str,
    client: StoreDep,
    catalog: CatalogDep,
    caller: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many")] = MAX_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="skip this many")] = 0,
) -> Integrations:
    """List the audit-log subscriptions of an integration, oldest first, 100 at most a page."""
    _manifest(catalog, integrationKey)
    records, total = subscriptions.subscription_page(
        client, offset=offset, limit=limit, kind=integrationKey
    )
    statuses = subscription_status.get_statuses(client, sub_ids=[r.id for r in records])
    items = [integration_of(r, status=statuses[r.id], caller=caller) for r in records]
    return Integrations(
        links=_page_links(collection_href(integrationKey), offset, limit, total),
        items=items,
        key=integrationKey,
        totalCount=total,
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
    catalog: CatalogDep,
    caller: WriterDep,
) -> Integration:
    """Update an audit-log subscription with a JSON Patch (optionally in a comment envelope)."""
    _find(client, integrationKey, id)
    manifest = _manifest(catalog, integrationKey)
    operations, prefix = patch_operations(body)
    generated: list[bool] = []

    def change(record: SubscriptionRecord) -> SubscriptionRecord:
        patched = apply_patch(
            editable_document(record),
            operations,
            max_bytes=settings.max_subscription_bytes,
            prefix=prefix,
        )
        valid = validate_subscription(
            fields_of(patched), stored_config=record.config, settings=settings, manifest=manifest
        )
        generated[:] = [valid.secret_generated]
        return replace(_updated(record, valid), secret_fields=_secret_fields(manifest))

    try:
        updated = subscriptions.update_subscription(
            client, sub_id=id, change=change, max_entries=settings.max_total_policy_entries
        )
    except TooManyPolicyEntriesError as exc:
        raise _over_total_entries(exc) from exc
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


def _page_links(href: str, offset: int, limit: int, total: int) -> dict[str, Link]:
    """self, and LaunchDarkly's next/prev links when there is a page that way."""
    links = {"self": Link(href=href)}
    if offset + limit < total:
        links["next"] = Link(href=f"{href}?limit={limit}&offset={offset + limit}")
    if offset > 0:
        links["prev"] = Link(href=f"{href}?limit={limit}&offset={max(offset - limit, 0)}")
    return links


def _manifest(catalog: Catalog, integration_key: str) -> Manifest | None:
    """The integration's manifest (None for relay's own `webhook`); 404 for an unknown key."""
    if not catalog.knows(integration_key):
        known = ", ".join(catalog.keys())
        raise NotFoundError(f"unknown integration {integration_key}; the relay knows {known}")
    return catalog.get(integration_key)


def _secret_fields(manifest: Manifest | None) -> tuple[str, ...]:
    return tuple(sorted(manifest.secret_keys)) if manifest is not None else ()


def _find(client: StoreDep, integration_key: str, sub_id: str) -> SubscriptionRecord:
    """A stored subscription of that integration, even if its manifest was removed since."""
    record = subscriptions.get_subscription(client, sub_id=sub_id)
    if record is None or record.integration_key != integration_key:
        raise _not_found(sub_id)
    return record


def _over_total_entries(exc: TooManyPolicyEntriesError) -> InvalidRequestError:
    reason = (
        f"the policies of all subscriptions have {exc.stored} entries; {exc.adding} more would "
        f"pass {exc.limit} (RELAY_MAX_TOTAL_POLICY_ENTRIES)"
    )
    return InvalidRequestError(reason, [FieldProblem("statements", reason)])


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
        delivery=valid.delivery,
    )


def _view(
    client: StoreDep, record: SubscriptionRecord, caller: TokenInfo, *, reveal_secret: bool = False
) -> Integration:
    status = subscription_status.get_status(client, sub_id=record.id)
    return integration_of(record, status=status, caller=caller, reveal_secret=reveal_secret)
