"""Wire models of the audit-log subscriptions API, named as LaunchDarkly names them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class SubscriptionPost(BaseModel):
    """The body of a create; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=256)
    config: dict[str, Any] = Field(
        description="webhook: url (required), secret, format (unleash|launchdarkly), headers"
    )
    statements: list[StatementPost] | None = None
    on: bool = Field(default=True, description="whether the subscription sends events")
    tags: list[str] = Field(default_factory=list, max_length=100)


class SubscriptionFields(SubscriptionPost):
    """The editable document a JSON Patch applies to; every field present."""

    statements: list[StatementPost] | None
    on: bool
    tags: list[str] = Field(max_length=100)


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
    status: IntegrationSubscriptionStatusRep = Field(alias="_status")
    access: Access = Field(alias="_access")


class Integrations(BaseModel):
    """The subscriptions of one integration."""

    model_config = ConfigDict(populate_by_name=True)

    links: dict[str, Link] = Field(alias="_links")
    items: list[Integration]
    key: str
