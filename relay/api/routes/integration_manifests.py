"""The integrations relay can send to, described by their manifests (secrets never shown)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from relay.api.deps import CatalogDep, ReaderDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.errors import NotFoundError
from relay.integrations.catalog import WEBHOOK, Catalog
from relay.integrations.manifest import Manifest
from relay.subscriptions.config import FORMATS

router = APIRouter(
    prefix="/api/v2/integration-manifests", tags=["integrations"], responses=AUTH_ERRORS
)


class IntegrationManifest(BaseModel):
    """One integration: what it is, the config it asks for, and what it sends."""

    model_config = ConfigDict(extra="allow")

    key: str
    name: str
    overview: str = ""
    description: str = ""
    version: str = ""
    author: str = ""
    builtin: bool
    links: dict[str, str] = {}
    categories: list[str] = []
    formVariables: list[dict[str, Any]]
    capabilities: dict[str, Any]
    # relay's extension: the delivery fields a new subscription takes when its client leaves
    # them out (docs/integrations.md, "Writing your own")
    deliveryDefaults: dict[str, Any] = {}


class IntegrationManifests(BaseModel):
    items: list[IntegrationManifest]


@router.get("", response_model=IntegrationManifests, response_model_exclude_none=True)
def get_integration_manifests(catalog: CatalogDep, _: ReaderDep) -> IntegrationManifests:
    """List the integrations subscriptions can be made for: `webhook`, then by key."""
    return IntegrationManifests(items=[_webhook(), *(_shown(m) for m in catalog)])


@router.get(
    "/{integrationKey}",
    response_model=IntegrationManifest,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def get_integration_manifest(
    integrationKey: str, catalog: CatalogDep, _: ReaderDep
) -> IntegrationManifest:
    """Get one integration's manifest."""
    if integrationKey == WEBHOOK:
        return _webhook()
    manifest = catalog.get(integrationKey)
    if manifest is None:
        raise NotFoundError(_unknown(catalog, integrationKey))
    return _shown(manifest)


def _shown(manifest: Manifest) -> IntegrationManifest:
    endpoint = manifest.endpoint
    return IntegrationManifest(
        key=manifest.key,
        name=manifest.name,
        overview=manifest.overview,
        description=manifest.description,
        version=manifest.version,
        author=manifest.author,
        builtin=manifest.builtin,
        links=manifest.links,
        categories=manifest.categories,
        formVariables=[_variable(v.model_dump(exclude_none=True)) for v in manifest.form_variables],
        capabilities={
            "auditLogEventsHook": {
                # header values are templates over secrets: their names only
                "endpoint": {
                    "method": endpoint.method,
                    "contentType": endpoint.content_type,
                    "headers": [name for name, _ in endpoint.headers],
                },
                "templates": sorted(manifest.templates),
                "defaultPolicy": manifest.default_policy,
            }
        },
        deliveryDefaults=manifest.delivery_defaults,
    )


def _variable(variable: dict[str, Any]) -> dict[str, Any]:
    if variable.get("isSecret"):
        variable.pop("defaultValue", None)  # a secret's default would be a shared secret
    return variable


def _webhook() -> IntegrationManifest:
    """relay's own integration: signed webhooks (docs/subscriptions.md)."""
    string: dict[str, Any] = {"type": "string", "isOptional": True}
    return IntegrationManifest(
        key=WEBHOOK,
        name="Webhook",
        overview="Signed HTTP POSTs of each event to your endpoint.",
        builtin=True,
        formVariables=[
            {"key": "url", "name": "URL", "type": "uri"},
            {"key": "secret", "name": "Signing secret", **string, "isSecret": True},
            {
                "key": "format",
                "name": "Payload format",
                "type": "enum",
                "allowedValues": list(FORMATS),
                "defaultValue": FORMATS[0],
                "isOptional": True,
            },
            {"key": "headers", "name": "Headers (an object)", **string, "isSecret": True},
            {"key": "contentType", "name": "Content type", **string},
            {"key": "authorization", "name": "Authorization header", **string, "isSecret": True},
            {"key": "customHeaders", "name": "Custom headers (JSON)", **string, "isSecret": True},
            {"key": "bodyTemplate", "name": "Body template (Mustache)", **string},
        ],
        capabilities={"auditLogEventsHook": {"endpoint": {"method": "POST"}, "signed": True}},
    )


def _unknown(catalog: Catalog, key: str) -> str:
    return f"unknown integration {key}; the relay knows {', '.join(catalog.keys())}"
