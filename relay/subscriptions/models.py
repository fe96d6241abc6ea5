"""Wire models of the audit-log subscriptions API, named as LaunchDarkly names them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from relay.integrations.manifest import DeliverySettings

MAX_NAME_LENGTH = 256
MAX_TAGS = 100
MAX_TAG_LENGTH = 64
Tag = Annotated[str, Field(max_length=MAX_TAG_LENGTH)]


class StatementPost(BaseModel):
    """A policy statement as sent; its grammar is checked by `policies.parse_statements`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    effect: Literal["allow", "deny"]
    resources: list[str] | None = None
    notResources: list[str] | None = None
    actions: list[str] | None = None
    notActions: list[str] | None = None


class Statement(BaseModel):
    effect: Literal["allow", "deny"]
    resources: list[str] | None = None
    notResources: list[str] | None = None
    actions: list[str] | None = None
    notActions: list[str] | None = None


class Delivery(DeliverySettings):
    """How a subscription is fed (docs/subscriptions.md, "Delivery"); unknown fields are refused."""


def _every_delivery_field(delivery: Delivery) -> dict[str, Any]:
    # a plain dict, so that the routes' exclude_none keeps the null limits: answers show
    # all three fields
    return delivery.model_dump()


# in answers: every field, nulls included, documented as the Delivery object
DeliveryShown = Annotated[
    Delivery,
    PlainSerializer(_every_delivery_field, return_type=dict[str, Any]),
    WithJsonSchema(
        {**Delivery.model_json_schema(), "required": list(Delivery.model_fields)},
        mode="serialization",
    ),
]


class SubscriptionPost(BaseModel):
    """The body of a create; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    config: dict[str, Any] = Field(
        description=(
            "webhook: url (required), secret, format (unleash|launchdarkly), headers, "
            "contentType, authorization, customHeaders, bodyTemplate; another integration: "
            "its manifest's form variables (GET /api/v2/integration-manifests/{key})"
        )
    )
    statements: list[StatementPost] | None = None
    on: bool = Field(default=True, description="whether the subscription sends events")
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    delivery: Delivery | None = Field(
        default=None,
        description="how it is fed; a field left out takes the integration's deliveryDefaults",
    )


class SubscriptionFields(SubscriptionPost):
    """The editable document a JSON Patch applies to; every field present."""

    statements: list[StatementPost] | None
    on: bool
    tags: list[Tag] = Field(max_length=MAX_TAGS)
    delivery: Delivery


class PatchOperation(BaseModel):
    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    value: Any = None
    from_: str | None = Field(default=None, alias="from")


class PatchWithComment(BaseModel):
    comment: str | None = None
    patch: list[PatchOperation]


class Link(BaseModel):
    href: str
    type: str = "application/json"


class IntegrationStatusRep(BaseModel):
    """One failed delivery attempt."""

    statusCode: int | None = None
    responseBody: str | None = None
    timestamp: int


class HeldKeyRep(BaseModel):
    """An ordering key that holds deliveries back, and the delivery it waits for."""

    key: str
    waiting: int
    head: str
    headState: str | None = None
    headAttempts: int = 0
    headNextAttemptAt: int | None = None
    headReason: str | None = None


class IntegrationSubscriptionStatusRep(BaseModel):
    """`_status`: delivery health; `disabledReason` when the relay turned it off."""

    successCount: int
    lastSuccess: int | None = None
    errorCount: int
    lastError: int | None = None
    errors: list[IntegrationStatusRep]
    failingSince: int | None = None
    disabledReason: str | None = None
    disabledAt: int | None = None
    # the circuit breaker, while open (docs/delivery.md): nothing is sent but one probe
    circuitState: Literal["open", "half-open"] | None = None
    circuitOpenedAt: int | None = None
    circuitRetryAt: int | None = None
    # a pause its receiver asked for (429 or 503 with Retry-After): nothing is sent until then
    pausedUntil: int | None = None
    pausedReason: str | None = None
    # an ordered subscription's keys that hold deliveries back (in one subscription's GET)
    heldBack: list[HeldKeyRep] | None = None
    # a `relay listen` subscription: its deliveries may reach this loopback origin, which
    # the destination guard refuses to every other subscription (set by the CLI only)
    localListener: str | None = None


class AccessReason(BaseModel):
    """The statement of the caller's role that allows or denies an action."""

    effect: Literal["allow", "deny"]
    resources: list[str]
    actions: list[str]
    role_name: str


class AccessAction(BaseModel):
    action: str
    reason: AccessReason


class Access(BaseModel):
    """`_access`: what the caller may and may not do with this subscription."""

    denied: list[AccessAction]
    allowed: list[AccessAction]


class Integration(BaseModel):
    """One audit-log subscription."""

    model_config = ConfigDict(populate_by_name=True)

    links: dict[str, Link] = Field(alias="_links")
    id: str = Field(alias="_id")
    kind: str
    name: str
    config: dict[str, Any]
    statements: list[Statement]
    on: bool
    tags: list[str]
    delivery: DeliveryShown
    status: IntegrationSubscriptionStatusRep = Field(alias="_status")
    access: Access = Field(alias="_access")


class Integrations(BaseModel):
    """One page of the subscriptions of an integration; `_links.next` leads to the rest."""

    model_config = ConfigDict(populate_by_name=True)

    links: dict[str, Link] = Field(alias="_links")
    items: list[Integration]
    key: str
    totalCount: int
