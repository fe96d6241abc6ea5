"""Every built-in integration's request, rendered for real Unleash 8.2 events (and hostile
variants of them), passes what its service checks; secrets go only where the manifest
puts them; the test send renders for every built-in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from relay.integrations.catalog import load_catalog
from relay.integrations.manifest import Manifest
from relay.integrations.render import EventContext, RenderedRequest, render_request
from relay.settings import Settings
from relay.subscriptions.integration_config import validate_form
from tests.conftest import Received
from tests.relay.integrations import service_checks
from tests.relay.integrations.service_checks import Check
from workers.delivery.payloads import test_event as relay_test_event

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "data/shared/fixtures/unleash/unleash-8.2.0-events-sample.jsonl"
)
REAL = {event["id"]: event for event in map(json.loads, SAMPLE.read_text().splitlines())}
PUBLIC_URL = "https://relay.example.com"
LONG_NAME = "checkout-" + "x" * 246  # Unleash's varchar(255), the most relay accepts

# the service's production host (no base-URL override), secrets easy to find in a request
CONFIGS: dict[str, dict[str, Any]] = {
    "datadog": {"apiKey": "SECRET-dd-0123456789abcdef", "hostURL": "https://api.datadoghq.eu"},
    "elastic": {
        "url": "https://example.es.us-east-1.aws.elastic.cloud:443",
        "token": "SECRET-elastic-aWQ6YXBpa2V5",
        "index": "relay-audit",
    },
    "grafana": {"endpointUrl": "https://example.grafana.net", "apiKey": "SECRET-glsa_token"},
    "honeycomb": {"datasetName": "production", "apiKey": "SECRET-hny-config-key"},
    "msteams": {
        "url": "https://prod-00.westus.logic.azure.com:443/workflows/0a1b/triggers/manual/paths/"
        "invoke?api-version=2016-06-01&sig=SECRET-teams-signature"
    },
    "new-relic": {"accountId": "1234567", "apiKey": "SECRET-nr-license-key"},
    "pagerduty": {"integrationKey": "SECRETpd0123456789abcdef0123456"},
    "slack": {"url": "https://hooks.slack.com/services/T0000000/B0000000/SECRETslackpath"},
    "splunk": {
        "base-url": "https://http-inputs-example.splunkcloud.com",
        "token": "SECRET-splunk-2f1c6d0e",
    },
}
# where each secret form variable may appear: "url", "body", or "header:<Name>"
SECRET_PLACES: dict[str, dict[str, set[str]]] = {
    "datadog": {"apiKey": {"header:DD-API-KEY"}},
    "elastic": {"token": {"header:Authorization"}},
    "grafana": {"apiKey": {"header:Authorization"}},
    "honeycomb": {"apiKey": {"header:X-Honeycomb-Team"}},
    "msteams": {"url": {"url"}},
    "new-relic": {"apiKey": {"header:Api-Key"}},
    "pagerduty": {"integrationKey": {"body"}},
    "slack": {"url": {"url"}},
    "splunk": {"token": {"header:Authorization"}},
}
# with no base-URL override, each request goes to the service's documented host
DEFAULT_URLS = [
    ("datadog", {"apiKey": "k"}, "https://api.datadoghq.com/api/v1/events"),
    ("datadog", CONFIGS["datadog"], "https://api.datadoghq.eu/api/v1/events"),
    ("honeycomb", CONFIGS["honeycomb"], "https://api.honeycomb.io/1/markers/production"),
    (
        "new-relic",
        CONFIGS["new-relic"],
        "https://insights-collector.newrelic.com/v1/accounts/1234567/events",
    ),
    ("pagerduty", CONFIGS["pagerduty"], "https://events.pagerduty.com/v2/change/enqueue"),
    (
        "splunk",
        CONFIGS["splunk"],
        "https://http-inputs-example.splunkcloud.com/services/collector/event",
    ),
    ("grafana", CONFIGS["grafana"], "https://example.grafana.net/api/annotations"),
    (
        "elastic",
        CONFIGS["elastic"],
        "https://example.es.us-east-1.aws.elastic.cloud:443/relay-audit/_doc",
    ),
]

# a request the service refuses: (built-in, change to its headers and body, the reason)
Mutation = Callable[[dict[str, str], Any], object]
BROKEN: list[tuple[str, Mutation, str]] = [
    ("datadog", lambda h, b: h.pop("dd-api-key"), "DD-API-KEY"),
    ("datadog", lambda h, b: b.update(date_happened=b["date_happened"] * 1000), "date_happened"),
    ("datadog", lambda h, b: b.update(text="x" * 4001), "text has 4001"),
    ("slack", lambda h, b: b.pop("text"), "fallback"),
    ("slack", lambda h, b: b.update(blocks=b["blocks"] * 26), "1 to 50 blocks"),
    ("slack", lambda h, b: b["blocks"].append(_header("x" * 151)), "151 characters"),
    ("slack", lambda h, b: b["blocks"].append(_mrkdwn("<!channel>")), "mention"),
    (
        "slack",
        lambda h, b: b["blocks"].append(_mrkdwn("</api/v2/auditlog/11|Audit log entry>")),
        "absolute",
    ),
    ("msteams", lambda h, b: _card(b).update(version="1.5"), "> 1.4"),
    ("msteams", lambda h, b: _card(b).update(version=1.4), "must be a string"),
    ("msteams", lambda h, b: b["attachments"].append(b["attachments"][0]), "one attachment"),
    ("msteams", lambda h, b: _card(b)["body"].append({"type": "TextBlock"}), "needs text"),
    ("msteams", lambda h, b: _card(b)["body"].append({"type": "Table"}), "not an element"),
    ("msteams", lambda h, b: _card(b).update(actions=[_open_url("/audit")]), "absolute"),
    ("pagerduty", lambda h, b: b["payload"].update(summary="x" * 1025), "1025 characters"),
    ("pagerduty", lambda h, b: b["payload"].update(timestamp="yesterday"), "ISO 8601"),
    ("pagerduty", lambda h, b: b.update(routing_key="other"), "routing_key"),
    ("splunk", lambda h, b: h.update(authorization="Bearer t"), "Splunk <token>"),
    ("splunk", lambda h, b: b.update(event=""), "blank"),
    ("new-relic", lambda h, b: b[0].update(tags=["a"]), "strings or numbers"),
    ("new-relic", lambda h, b: h.pop("api-key"), "Api-Key"),
    ("honeycomb", lambda h, b: b.update(start_time=b["start_time"] * 1000), "start_time"),
    ("grafana", lambda h, b: b.update(time=b["time"] // 1000), "time"),
    ("elastic", lambda h, b: b.pop("@timestamp"), "@timestamp"),
]


def _header(content: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": content}}


def _mrkdwn(content: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": content}]}


def _open_url(url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": "Open", "url": url}


def _card(message: Any) -> dict[str, Any]:
    card: dict[str, Any] = message["attachments"][0]["content"]
    return card


def _variant(event_id: int, **changes: Any) -> dict[str, Any]:
    """A real event with some fields replaced (None removes one)."""
    event = {**REAL[event_id], **changes}
    return {k: v for k, v in event.items() if v is not None or k not in changes}


EVENTS: dict[str, dict[str, Any]] = {
    "feature-created (no environment)": REAL[9],
    "feature-strategy-add": REAL[10],
    "feature-environment-enabled": REAL[11],
    "feature-environment-disabled": REAL[21],
    "feature-tagged": REAL[23],
    "feature-metadata-updated (preData)": REAL[24],
    "feature-archived": REAL[25],
    "context-field-created (no project)": REAL[16],
    "api-token-created (project *)": REAL[5],
    "strategy-created (system user)": REAL[1],
    "quotes and backslashes": _variant(
        11,
        createdBy='O"Brien \\ the "admin"',
        featureName='say-"hi"',
        tags=[{"type": "simple", "value": 'quoted "tag" \\n'}],
    ),
    "newlines": _variant(
        24,
        createdBy="first line\nsecond line",
        tags=[{"type": "team", "value": "a\r\nb"}],
        data={"description": "x\ny", "multi\nline key": 1},
    ),
    "unicode": _variant(
        11,
        createdBy="Zoë Ångström 🚀",
        featureName="café-功能-\u202eRTL",
        environment="prödüction",
        tags=[{"type": "équipe", "value": "ünï"}],
    ),
    "html and slack controls": _variant(
        11,
        createdBy="<!channel> & <script>alert(1)</script>",
        featureName="a<b>&c",
        tags=[{"type": "owner", "value": "<@U0123>"}],
        comment="<!here> ship it & see <https://evil.example|docs>",
    ),
    "no project": _variant(11, project=None, environment=None),
    "very long names": _variant(11, featureName=LONG_NAME, createdBy="u" * 255),
}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Manifest]:
    """The built-in manifests by key."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("payload-data"))
    return {manifest.key: manifest for manifest in load_catalog(settings)}


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Check]:
    """The service checks, Teams' with the published Adaptive Card schema when npm is here."""
    schema = service_checks.adaptive_card_schema(_shared_cache(tmp_path_factory))
    return service_checks.checks_with(service_checks.card_validator(schema) if schema else None)


def _shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this run shares (their base temps are siblings)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if base.name.startswith("popen-gw") else base) / "schema-cache"


def _config(manifest: Manifest, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The config the API would store for `raw` (defaults applied, checked)."""
    config, _ = validate_form(manifest, raw, stored=None)
    return config


def _render(
    manifest: Manifest, config: Mapping[str, Any], event: Mapping[str, Any]
) -> RenderedRequest:
    return render_request(manifest, config, EventContext.of(event), validation=False)


def _received_at(event: Mapping[str, Any]) -> float:
    """Delivered a second after the event happened."""
    milliseconds: int = EventContext.of(event).entry["timestamp"]["milliseconds"]
    return milliseconds / 1000 + 1


def test_every_builtin_has_a_service_check_and_a_config(catalog: dict[str, Manifest]) -> None:
    """The tables here cover exactly the built-ins, and their secret fields."""
    assert set(catalog) == set(service_checks.CHECKS) == set(CONFIGS) == set(SECRET_PLACES)
    for key, manifest in catalog.items():
        assert set(SECRET_PLACES[key]) == set(manifest.secret_keys), key


@pytest.mark.parametrize("public_url", ["", PUBLIC_URL], ids=["no-public-url", "public-url"])
@pytest.mark.parametrize("event_name", list(EVENTS))
@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_rendered_request_passes_the_service_checks(
    key: str,
    event_name: str,
    public_url: str,
    catalog: dict[str, Manifest],
    checks: dict[str, Check],
) -> None:
    """The request for a real (or hostile) event is one the service accepts as documented,
    with and without the audit-entry link (RELAY_PUBLIC_URL)."""
    manifest = catalog[key]
    event = EVENTS[event_name]
    config = _config(manifest, CONFIGS[key])
    context = EventContext.of(event, base_url=public_url)
    rendered = render_request(manifest, config, context, validation=False)
    checks[key](service_checks.received_of(rendered, at=_received_at(event)), config)


@pytest.mark.parametrize(("key", "raw", "url"), DEFAULT_URLS)
def test_without_an_override_the_request_goes_to_the_service_host(
    key: str, raw: dict[str, Any], url: str, catalog: dict[str, Manifest]
) -> None:
    """A fixed-host built-in sends to its documented host when no base URL is given."""
    manifest = catalog[key]
    assert _render(manifest, _config(manifest, raw), REAL[11]).url == url


def test_a_base_url_override_replaces_the_host(catalog: dict[str, Manifest]) -> None:
    """Each fixed-host built-in has an optional base-URL override that takes the host's place."""
    overrides = {"datadog": "baseUrl", "honeycomb": "baseUrl", "new-relic": "baseUrl"}
    overrides |= {"pagerduty": "baseUrl"}
    for key, field in overrides.items():
        manifest = catalog[key]
        [variable] = [v for v in manifest.form_variables if v.key == field]
        assert variable.isOptional and variable.type == "uri", key
        config = _config(manifest, {**CONFIGS[key], field: "http://127.0.0.1:8080/proxy"})
        assert _render(manifest, config, REAL[11]).url.startswith("http://127.0.0.1:8080/proxy/")


@pytest.mark.parametrize("event_name", list(EVENTS))
@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_secrets_appear_only_where_the_manifest_puts_them(
    key: str, event_name: str, catalog: dict[str, Manifest]
) -> None:
    """A secret form variable is in its own header, URL or body field, nowhere else."""
    manifest = catalog[key]
    config = _config(manifest, CONFIGS[key])
    rendered = _render(manifest, config, EVENTS[event_name])
    for field, places in SECRET_PLACES[key].items():
        secret = str(config[field])
        found = set(_places_holding(rendered, secret))
        assert found == places, f"{key}.{field} is in {sorted(found)}, expected {sorted(places)}"
        if "body" in places:
            assert rendered.body.decode().count(secret) == 1, f"{key}.{field} repeated in body"


def _places_holding(rendered: RenderedRequest, secret: str) -> Iterator[str]:
    if secret in rendered.url:
        yield "url"
    if secret in rendered.body.decode():
        yield "body"
    for name, value in rendered.headers.items():
        if secret in value:
            yield f"header:{name}"


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_the_test_send_renders_for_the_relay_test_event(
    key: str, catalog: dict[str, Manifest], checks: dict[str, Check]
) -> None:
    """The `validation` template renders relay's test event into a request the service takes."""
    now_ms = 1_767_225_600_000
    manifest = catalog[key]
    config = _config(manifest, CONFIGS[key])
    context = EventContext.of(relay_test_event(now_ms=now_ms))
    rendered = render_request(manifest, config, context, validation=True)
    checks[key](service_checks.received_of(rendered, at=now_ms / 1000), config)


def test_the_teams_card_is_checked_against_the_published_schema(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The Adaptive Card schema is fetched and refuses a card that breaks it."""
    schema = service_checks.adaptive_card_schema(_shared_cache(tmp_path_factory))
    if schema is None:
        pytest.fail("npm is needed to fetch the Adaptive Card schema (CI has it)")
    validate = service_checks.card_validator(schema)
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock"}]}
    with pytest.raises(AssertionError, match="fails the Adaptive Card schema"):
        validate(card)
    validate({**card, "body": [{"type": "TextBlock", "text": "ok", "weight": "Bolder"}]})


@pytest.mark.parametrize(("key", "mutate", "reason"), BROKEN)
def test_a_check_refuses_what_its_service_refuses(
    key: str,
    mutate: Mutation,
    reason: str,
    catalog: dict[str, Manifest],
    checks: dict[str, Check],
) -> None:
    """Each service check passes the built-in's request and fails it once broken."""
    # given
    manifest = catalog[key]
    config = _config(manifest, CONFIGS[key])
    rendered = render_request(manifest, config, EventContext.of(REAL[11], base_url=PUBLIC_URL))
    request = service_checks.received_of(rendered, at=_received_at(REAL[11]))
    headers, body = dict(request.headers), json.loads(request.body)
    checks[key](request, config)
    # when
    mutate(headers, body)
    broken = Received(request.path, headers, json.dumps(body).encode(), request.at)
    # then
    with pytest.raises(AssertionError, match=reason):
        checks[key](broken, config)
