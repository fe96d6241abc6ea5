"""Integration manifests in LaunchDarkly's integration-framework format, read and checked.

A manifest is `<key>/manifest.json` with its templates beside it (the framework's layout).
relay reads `formVariables` and `capabilities.auditLogEventsHook` (`endpoint`, `templates`,
`defaultPolicy`); every other capability is ignored with a log line, and descriptive fields
(`name`, `overview`, `description`, `links`, ...) are shown as given. A relay extension,
the top-level `deliveryDefaults`, gives the `delivery` fields a new subscription takes when
its client leaves them out (e.g. the receiving service's documented rate limit). Every
template, the endpoint's URL and its header values are compiled when the manifest is read,
so a manifest that loads is one relay can render; one that does not raises `ManifestError`
naming the file and the field.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policies import StatementValidationError, parse_statements, statement_to_dict
from relay.integrations.handlebars import Template, TemplateError, compile_template

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
MAX_MANIFEST_BYTES = 256 * 1024
MAX_TEMPLATE_BYTES = 64 * 1024
# the framework's template names, in the order an event's kind picks them
TEMPLATE_NAMES = ("flag", "project", "environment", "member", "default", "validation")
METHODS = ("POST", "PUT", "PATCH")
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_HOOK = "auditLogEventsHook"
# the bounds of a subscription's delivery settings (docs/subscriptions.md, "Delivery")
MAX_PER_SECOND = 1000
MAX_IN_FLIGHT = 1000
Ordering = Literal["none", "flag", "subscription"]


class ManifestError(ValueError):
    """A manifest relay cannot use; the message names the file and the field."""

    def __init__(self, path: Path, field_name: str, reason: str) -> None:
        where = f"{path}: {field_name}" if field_name else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.field = field_name
        self.reason = reason


class FormVariable(BaseModel):
    """One field of a subscription's `config`, as the manifest declares it."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    key: str = Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,39}$")
    name: str = Field(min_length=1, max_length=100)
    type: Literal["string", "boolean", "uri", "enum", "dynamicEnum"]
    description: str = Field(default="", max_length=1000)
    placeholder: str | None = None
    isSecret: bool = False
    isOptional: bool = False
    defaultValue: bool | str | None = None
    allowedValues: list[str] | None = None


class DeliverySettings(BaseModel):
    """How a subscription is fed; the keys set are `model_fields_set`, the rest take defaults.

    A subscription's `delivery` and a manifest's `deliveryDefaults` share this shape, so a
    default a manifest loads with is one a subscription may store.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    ordering: Ordering = Field(
        default="none",
        description="none: any order; flag: per flag (within a project); subscription: strict",
    )
    maxPerSecond: float | None = Field(
        default=None,
        gt=0,
        le=MAX_PER_SECOND,
        description="requests a second to this subscription, across all workers; null: no limit",
    )
    maxInFlight: int | None = Field(
        default=None,
        ge=1,
        le=MAX_IN_FLIGHT,
        description="requests in flight to this subscription at once; null: the relay's default",
    )

    def given(self) -> dict[str, Any]:
        """Only the keys that were set, as the wire names them."""
        return self.model_dump(include=self.model_fields_set)


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
    value: str = Field(max_length=4096)


class _Endpoint(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    url: str = Field(min_length=1, max_length=4096)
    method: str = "POST"
    headers: list[_Header] = Field(default_factory=list, max_length=20)


class _Hook(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    endpoint: _Endpoint
    templates: dict[str, str] = Field(default_factory=dict)
    defaultPolicy: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


class _ManifestFile(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str = Field(min_length=1, max_length=100)
    version: str = ""
    overview: str = Field(default="", max_length=1000)
    description: str = Field(default="", max_length=4000)
    author: str = ""
    supportEmail: str = ""
    links: dict[str, str] = Field(default_factory=dict)
    categories: list[str] = Field(default_factory=list)
    formVariables: list[FormVariable] = Field(default_factory=list, max_length=50)
    capabilities: dict[str, Any]
    deliveryDefaults: DeliverySettings = Field(default_factory=DeliverySettings)


@dataclass(frozen=True)
class Endpoint:
    """Where and how an integration's deliveries go; url and header values are templates."""

    url: Template
    method: str
    headers: tuple[tuple[str, Template], ...]
    content_type: str  # the Content-Type header as written (JSON when none)

    @property
    def sends_json(self) -> bool:
        return is_json_media_type(self.content_type)


@dataclass(frozen=True)
class Manifest:
    """A loaded integration: what it asks for, where it sends, and how it renders."""

    key: str
    path: Path
    name: str
    version: str
    overview: str
    description: str
    author: str
    links: dict[str, str]
    categories: list[str]
    form_variables: tuple[FormVariable, ...]
    endpoint: Endpoint
    templates: dict[str, Template]
    default_policy: list[dict[str, Any]]
    builtin: bool = False
    secret_keys: frozenset[str] = field(default=frozenset())
    # `deliveryDefaults`: only the keys the manifest sets (wire names)
    delivery_defaults: dict[str, Any] = field(default_factory=dict)

    def template_for(self, kind: str) -> Template | None:
        """The template for events of `kind`, else `default`; None when neither exists."""
        return self.templates.get(kind) or self.templates.get("default")

    def validation_template(self) -> Template | None:
        """What the test send and the create-time check render: `validation`, else the
        first template there is."""
        for name in ("validation", "default", "flag", "project", "environment", "member"):
            if name in self.templates:
                return self.templates[name]
        return None


def is_json_media_type(media_type: str) -> bool:
    """`application/json`, `application/vnd.x+json; charset=utf-8`, ... are JSON."""
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


def load_manifest(folder: Path, *, builtin: bool = False) -> Manifest:
    """Read and check `folder/manifest.json` and its templates; `ManifestError` if unusable."""
    path = folder / MANIFEST_FILE
    key = folder.name
    if not KEY_PATTERN.fullmatch(key) or key == "webhook":
        reason = "the folder name is the integration key: lowercase letters, digits, . _ -"
        raise ManifestError(folder, "", reason + (" (webhook is relay's own)" if key else ""))
    parsed = _parse_file(path)
    hook = _hook_of(path, parsed.capabilities)
    _check_form_variables(path, parsed.formVariables)
    endpoint = _endpoint(path, hook.endpoint)
    templates = {
        name: _template(folder, path, name, relative) for name, relative in hook.templates.items()
    }
    if not templates:
        raise ManifestError(path, f"capabilities.{_HOOK}.templates", "names no template")
    return Manifest(
        key=key,
        path=path,
        name=parsed.name,
        version=parsed.version,
        overview=parsed.overview,
        description=parsed.description,
        author=parsed.author,
        links=dict(parsed.links),
        categories=list(parsed.categories),
        form_variables=tuple(parsed.formVariables),
        endpoint=endpoint,
        templates=templates,
        default_policy=_default_policy(path, hook.defaultPolicy),
        builtin=builtin,
        secret_keys=frozenset(v.key for v in parsed.formVariables if v.isSecret),
        delivery_defaults=parsed.deliveryDefaults.given(),
    )


def _parse_file(path: Path) -> _ManifestFile:
    try:
        raw = _read_bounded(path, MAX_MANIFEST_BYTES)
        document = json.loads(raw)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(path, "", f"cannot be read as JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ManifestError(path, "", "must be a JSON object")
    try:
        return _ManifestFile.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ManifestError(path, where, error["msg"]) from exc


def _hook_of(path: Path, capabilities: Mapping[str, Any]) -> _Hook:
    for name in capabilities:
        if name != _HOOK:
            log.info("integration manifest %s: capability %s is ignored by relay", path, name)
    if _HOOK not in capabilities:
        raise ManifestError(path, f"capabilities.{_HOOK}", "is required: relay sends audit events")
    try:
        hook = _Hook.model_validate(capabilities[_HOOK])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in (f"capabilities.{_HOOK}", *error["loc"]))
        raise ManifestError(path, where, error["msg"]) from exc
    for name in hook.templates:
        if name not in TEMPLATE_NAMES:
            where = f"capabilities.{_HOOK}.templates.{name}"
            raise ManifestError(
                path, where, f"unknown; expected one of {', '.join(TEMPLATE_NAMES)}"
            )
    return hook


def _check_form_variables(path: Path, variables: Sequence[FormVariable]) -> None:
    seen: set[str] = set()
    for index, variable in enumerate(variables):
        where = f"formVariables.{index}"
        if variable.key in seen:
            raise ManifestError(path, f"{where}.key", f"{variable.key!r} is declared twice")
        seen.add(variable.key)
        if variable.type == "enum" and not variable.allowedValues:
            raise ManifestError(path, f"{where}.allowedValues", "an enum needs allowedValues")
        default = variable.defaultValue
        if default is not None and isinstance(default, bool) != (variable.type == "boolean"):
            raise ManifestError(path, f"{where}.defaultValue", f"is not a {variable.type}")
        if (
            variable.type == "enum"
            and default is not None
            and default not in (variable.allowedValues or [])
        ):
            raise ManifestError(path, f"{where}.defaultValue", "is not one of allowedValues")


def _endpoint(path: Path, endpoint: _Endpoint) -> Endpoint:
    base = f"capabilities.{_HOOK}.endpoint"
    method = endpoint.method.upper()
    if method not in METHODS:
        raise ManifestError(path, f"{base}.method", f"must be one of {', '.join(METHODS)}")
    url = _compile(path, f"{base}.url", endpoint.url)
    headers = tuple(
        (header.name, _compile(path, f"{base}.headers.{index}.value", header.value))
        for index, header in enumerate(endpoint.headers)
    )
    content_type = next(
        (h.value.strip() for h in endpoint.headers if h.name.lower() == "content-type"),
        "application/json",
    )
    return Endpoint(url=url, method=method, headers=headers, content_type=content_type)


def _template(folder: Path, path: Path, name: str, relative: str) -> Template:
    where = f"capabilities.{_HOOK}.templates.{name}"
    file = (folder / relative).resolve()
    if not file.is_relative_to(folder.resolve()):
        raise ManifestError(path, where, f"{relative} is outside the integration's folder")
    try:
        source = _read_bounded(file, MAX_TEMPLATE_BYTES)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(path, where, f"cannot read {relative}: {exc}") from exc
    return _compile(path, where, source, name=relative)


def _compile(path: Path, where: str, source: str, *, name: str = "") -> Template:
    try:
        return compile_template(source, name=name or where)
    except TemplateError as exc:
        raise ManifestError(path, where, str(exc)) from exc


def _default_policy(path: Path, raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    where = f"capabilities.{_HOOK}.defaultPolicy"
    try:
        return [statement_to_dict(s) for s in parse_statements(raw, attribute=where)]
    except StatementValidationError as exc:
        first = exc.errors[0]
        raise ManifestError(path, first.attribute, first.reason) from exc


def _read_bounded(path: Path, limit: int) -> str:
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data.decode("utf-8")
