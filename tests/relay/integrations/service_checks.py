"""What each built-in integration's real service checks of a request it receives.

One `check_<key>(request, config)` per built-in: the method, path, auth header and content
type the service's public API documentation asks for, its required fields, their types
and its documented limits. Each returns the parsed body. `config` is the subscription's
form variables (a base-URL override, when given, prefixes the documented path).

Two checks go past what the service refuses, where it would accept a request that does
not do its job: a link a person clicks must be an absolute http(s) URL, and Slack mrkdwn
(the message's `text` included) may hold `<` only as a link: Slack's formatting guide asks
for `&lt;` elsewhere, since it reads `<!channel>` or `<@U123>` as a mention.

`adaptive_card_schema` fetches the Adaptive Card JSON schema Microsoft publishes in the
`adaptivecards-designer` npm package; `card_validator` checks a card against it.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jsonschema_rs

from relay.integrations.render import RenderedRequest
from tests.conftest import Received

Check = Callable[[Received, Mapping[str, Any]], object]
CardValidator = Callable[[Any], None]

HOUR = 3600.0
DAY = 24 * HOUR
# timestamps are checked to be this close to the moment the request was received
TIME_SLACK = DAY
JSON_MEDIA = "application/json"
NO_LIMIT = 10**7  # for strings whose service documents no length limit (the body's bounds it)


# --- shared ---------------------------------------------------------------------------------


def received_of(rendered: RenderedRequest, *, at: float) -> Received:
    """The request a receiver would record for `rendered`, received at `at` (epoch s)."""
    parts = urlsplit(rendered.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {name.lower(): value for name, value in rendered.headers.items()}
    return Received(path, headers, rendered.body, at, rendered.method)


def json_request(request: Received, *, path: str, max_bytes: int, method: str = "POST") -> Any:
    """The parsed JSON body, after checking method, path, content type and size."""
    assert request.method == method, f"method {request.method}, the API takes {method}"
    assert request.path == path, f"path {request.path!r}, the API's is {path!r}"
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    assert media == JSON_MEDIA, f"content-type {media!r}, the API takes {JSON_MEDIA}"
    assert len(request.body) <= max_bytes, f"body of {len(request.body)} B > {max_bytes} B"
    return json.loads(request.body, parse_constant=_no_constant)


def base_path(base_url: str) -> str:
    """The path of a base URL (a proxy may add one), without a trailing slash."""
    return urlsplit(base_url).path.rstrip("/")


def url_path(url: str) -> str:
    """The path and query a request to `url` carries."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def text(value: object, where: str, *, max_len: int, min_len: int = 1) -> str:
    """`value` as a string of `min_len` to `max_len` characters."""
    assert isinstance(value, str), f"{where} must be a string, is {type(value).__name__}"
    assert min_len <= len(value) <= max_len, (
        f"{where} has {len(value)} characters; the API takes {min_len} to {max_len}"
    )
    return value


def integer(value: object, where: str) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), f"{where} must be an integer"
    return value


def near(moment_s: float, request: Received, where: str, *, before: float, after: float) -> None:
    """`moment_s` (epoch s) lies from `before` s before to `after` s after the request."""
    assert request.at - before <= moment_s <= request.at + after, (
        f"{where} is {moment_s - request.at:+.0f} s from the request; the API takes "
        f"-{before:.0f} s to +{after:.0f} s (a seconds/milliseconds mix-up?)"
    )


def iso8601(value: object, where: str) -> float:
    """An ISO 8601 date-time with an offset; its epoch seconds."""
    stamp = text(value, where, max_len=64)
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise AssertionError(f"{where} {stamp!r} is not ISO 8601") from exc
    assert moment.tzinfo is not None, f"{where} {stamp!r} has no UTC offset"
    return moment.timestamp()


def absolute_link(url: object, where: str) -> None:
    """A link a person follows: an absolute http(s) URL (a relative one opens nothing)."""
    assert isinstance(url, str), f"{where} must be a string"
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.hostname, (
        f"{where} {url!r} is not an absolute http(s) URL: the link opens nothing"
    )


def _no_constant(name: str) -> None:
    raise AssertionError(f"the body holds {name}, which JSON does not have")


# --- Slack: incoming webhooks, Block Kit ----------------------------------------------------

SLACK_TEXT_MAX = 40_000
SLACK_BLOCKS_MAX = 50
SLACK_BLOCK_TYPES = {
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "video",
}
_SLACK_CONTROL = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def check_slack(request: Received, config: Mapping[str, Any]) -> dict[str, Any]:
    """A Block Kit message POSTed to the incoming webhook URL."""
    body = json_request(request, path=url_path(config["url"]), max_bytes=1_000_000)
    assert isinstance(body, dict), "a Slack message is a JSON object"
    blocks = body.get("blocks")
    fallback = text(body.get("text"), "text (the notification fallback)", max_len=SLACK_TEXT_MAX)
    slack_mrkdwn(fallback, "text")
    if blocks is not None:
        assert isinstance(blocks, list) and 1 <= len(blocks) <= SLACK_BLOCKS_MAX, (
            f"blocks must be a list of 1 to {SLACK_BLOCKS_MAX} blocks"
        )
        for index, block in enumerate(blocks):
            slack_block(block, f"blocks[{index}]")
    return body


def slack_block(block: object, where: str) -> None:
    """One layout block: a known type, with its type's required fields and limits."""
    assert isinstance(block, dict), f"{where} must be an object"
    kind = block.get("type")
    assert kind in SLACK_BLOCK_TYPES, f"{where}.type {kind!r} is not a Block Kit block"
    if "block_id" in block:
        text(block["block_id"], f"{where}.block_id", max_len=255)
    if kind == "section":
        _slack_section(block, where)
    elif kind == "context":
        elements = block.get("elements")
        assert isinstance(elements, list) and 1 <= len(elements) <= 10, (
            f"{where}.elements must hold 1 to 10 elements"
        )
        for index, element in enumerate(elements):
            _slack_context_element(element, f"{where}.elements[{index}]")
    elif kind == "header":
        slack_text_object(block.get("text"), f"{where}.text", max_len=150, plain_only=True)


def _slack_section(block: Mapping[str, Any], where: str) -> None:
    fields = block.get("fields")
    assert "text" in block or fields, f"{where} needs text or fields"
    if "text" in block:
        slack_text_object(block["text"], f"{where}.text", max_len=3000)
    if fields is not None:
        assert isinstance(fields, list) and len(fields) <= 10, f"{where}.fields: at most 10"
        for index, field in enumerate(fields):
            slack_text_object(field, f"{where}.fields[{index}]", max_len=2000)


def _slack_context_element(element: object, where: str) -> None:
    assert isinstance(element, dict), f"{where} must be an object"
    if element.get("type") == "image":
        text(element.get("image_url"), f"{where}.image_url", max_len=3000)
        text(element.get("alt_text"), f"{where}.alt_text", max_len=2000)
    else:
        slack_text_object(element, where, max_len=3000)


def slack_text_object(value: object, where: str, *, max_len: int, plain_only: bool = False) -> None:
    """A composition text object: plain_text or mrkdwn, 1 to `max_len` characters."""
    assert isinstance(value, dict), f"{where} must be a text object"
    kind = value.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    assert kind in allowed, f"{where}.type {kind!r}; Slack takes {' or '.join(allowed)} here"
    content = text(value.get("text"), f"{where}.text", max_len=max_len)
    if kind == "plain_text":
        assert "verbatim" not in value, f"{where}: verbatim is for mrkdwn only"
        assert isinstance(value.get("emoji", True), bool), f"{where}.emoji must be a boolean"
    else:
        assert "emoji" not in value, f"{where}: emoji is for plain_text only"
        slack_mrkdwn(content, f"{where}.text")


def slack_mrkdwn(content: str, where: str) -> None:
    """Slack reads `<...>` in mrkdwn as control (a mention, a channel, a link): each one
    must be a link to an absolute URL, and any other `<` escaped as `&lt;`."""
    for match in _SLACK_CONTROL.finditer(content):
        target = match.group(1)
        assert not target.startswith(("!", "@", "#")), (
            f"{where} holds the Slack mention {match.group(0)!r}: event text must be escaped"
        )
        absolute_link(target, f"{where} link {match.group(0)!r}")
    stray = _SLACK_CONTROL.sub("", content)
    assert "<" not in stray and ">" not in stray, (
        f"{where} has an unescaped < or > (Slack wants &lt; &gt;): {content[:200]!r}"
    )


# --- Microsoft Teams: workflow webhook, Adaptive Card ---------------------------------------

TEAMS_MESSAGE_MAX = 28 * 1024
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_MAX_VERSION = (1, 4)
CARD_ELEMENT_FIELDS = {
    "TextBlock": ("text",),
    "RichTextBlock": ("inlines",),
    "Image": ("url",),
    "Media": ("sources",),
    "FactSet": ("facts",),
    "ImageSet": ("images",),
    "Container": ("items",),
    "ColumnSet": (),
    "ActionSet": ("actions",),
    "Input.Text": ("id",),
    "Input.Number": ("id",),
    "Input.Date": ("id",),
    "Input.Time": ("id",),
    "Input.Toggle": ("id", "title"),
    "Input.ChoiceSet": ("id", "choices"),
}
CARD_ACTION_FIELDS = {
    "Action.OpenUrl": ("url",),
    "Action.Submit": (),
    "Action.ShowCard": ("card",),
    "Action.ToggleVisibility": ("targetElements",),
    "Action.Execute": (),
}


def check_msteams(
    request: Received, config: Mapping[str, Any], *, card_schema: CardValidator | None = None
) -> dict[str, Any]:
    """A message with one Adaptive Card (1.4 at most) POSTed to the workflow URL; with
    `card_schema`, the card is also validated against the published JSON schema."""
    body = json_request(request, path=url_path(config["url"]), max_bytes=TEAMS_MESSAGE_MAX)
    assert isinstance(body, dict) and body.get("type") == "message", "type must be message"
    attachments = body.get("attachments")
    assert isinstance(attachments, list) and len(attachments) == 1, "one attachment: the card"
    [attachment] = attachments
    assert isinstance(attachment, dict), "attachments[0] must be an object"
    assert attachment.get("contentType") == CARD_CONTENT_TYPE, "the attachment is not a card"
    card = attachment.get("content")
    adaptive_card(card, "attachments[0].content", top=True)
    if card_schema is not None:
        card_schema(card)
    return body


def adaptive_card(card: object, where: str, *, top: bool) -> None:
    """An AdaptiveCard: type, version (a string, 1.4 at most), $schema, known elements."""
    assert isinstance(card, dict), f"{where} must be an object"
    assert card.get("type") == "AdaptiveCard", f"{where}.type must be AdaptiveCard"
    if top:
        schema = text(card.get("$schema"), f"{where}.$schema", max_len=200)
        assert re.fullmatch(
            r"https?://adaptivecards\.io/schemas/(\d+\.\d+\.\d+/)?adaptive-card\.json", schema
        ), f"{where}.$schema {schema!r} is not the Adaptive Card schema"
        version = text(card.get("version"), f"{where}.version", max_len=10)
        assert re.fullmatch(r"\d+\.\d+", version), f"{where}.version {version!r} is not N.N"
        major, minor = (int(part) for part in version.split("."))
        assert (major, minor) <= CARD_MAX_VERSION, f"{where}.version {version} > 1.4"
    body = card.get("body", [])
    assert isinstance(body, list), f"{where}.body must be a list"
    for index, element in enumerate(body):
        card_element(element, f"{where}.body[{index}]")
    for index, action in enumerate(card.get("actions", [])):
        card_action(action, f"{where}.actions[{index}]")


def card_element(element: object, where: str) -> None:
    """A body element of a type Adaptive Cards 1.4 has, with its required fields."""
    assert isinstance(element, dict), f"{where} must be an object"
    kind = element.get("type")
    assert kind in CARD_ELEMENT_FIELDS, f"{where}.type {kind!r} is not an element of 1.4"
    for name in CARD_ELEMENT_FIELDS[kind]:
        assert element.get(name) not in (None, "", []), f"{where}: {kind} needs {name}"
    if kind == "TextBlock":
        text(element["text"], f"{where}.text", max_len=TEAMS_MESSAGE_MAX)
    elif kind == "FactSet":
        for index, fact in enumerate(element["facts"]):
            assert isinstance(fact, dict), f"{where}.facts[{index}] must be an object"
            text(fact.get("title"), f"{where}.facts[{index}].title", max_len=TEAMS_MESSAGE_MAX)
            text(fact.get("value"), f"{where}.facts[{index}].value", max_len=TEAMS_MESSAGE_MAX)
    for index, child in enumerate(element.get("items", [])):
        card_element(child, f"{where}.items[{index}]")
    for index, column in enumerate(element.get("columns", [])):
        assert isinstance(column, dict), f"{where}.columns[{index}] must be an object"
        for row, child in enumerate(column.get("items", [])):
            card_element(child, f"{where}.columns[{index}].items[{row}]")
    for index, action in enumerate(element.get("actions", [])):
        card_action(action, f"{where}.actions[{index}]")


def card_action(action: object, where: str) -> None:
    """An action of 1.4 with its required fields; Action.OpenUrl's url absolute."""
    assert isinstance(action, dict), f"{where} must be an object"
    kind = action.get("type")
    assert kind in CARD_ACTION_FIELDS, f"{where}.type {kind!r} is not an action of 1.4"
    for name in CARD_ACTION_FIELDS[kind]:
        assert action.get(name) not in (None, "", []), f"{where}: {kind} needs {name}"
    if kind == "Action.OpenUrl":
        absolute_link(action["url"], f"{where}.url")
    elif kind == "Action.ShowCard":
        adaptive_card(action["card"], f"{where}.card", top=False)


# --- Datadog: Events API v1 -----------------------------------------------------------------

DATADOG_ALERT_TYPES = {
    "error",
    "warning",
    "info",
    "success",
    "user_update",
    "recommendation",
    "snapshot",
}


def check_datadog(request: Received, config: Mapping[str, Any]) -> dict[str, Any]:
    """POST /api/v1/events with DD-API-KEY: title, text (4000 at most), date_happened (an
    integer of epoch seconds, 18 h in the past to 2 h ahead), alert_type, tags.

    The 100-character limit of v1 is aggregation_key's; a longer title is accepted
    (Datadog's own client examples post a 100+ character title and get OK). A tag is
    at most 200 characters (Datadog's tagging guide); longer ones are cut."""
    base = config.get("baseUrl") or config.get("hostURL") or "https://api.datadoghq.com"
    body = json_request(request, path=f"{base_path(base)}/api/v1/events", max_bytes=1_000_000)
    assert request.headers.get("dd-api-key") == config["apiKey"], "DD-API-KEY is not the key"
    assert isinstance(body, dict), "the event is a JSON object"
    text(body.get("title"), "title", max_len=NO_LIMIT)
    text(body.get("text"), "text", max_len=4000)
    if "date_happened" in body:
        happened = integer(body["date_happened"], "date_happened")
        near(happened, request, "date_happened", before=18 * HOUR, after=2 * HOUR)
    if "alert_type" in body:
        assert body["alert_type"] in DATADOG_ALERT_TYPES, f"alert_type {body['alert_type']!r}"
    if "priority" in body:
        assert body["priority"] in ("normal", "low"), f"priority {body['priority']!r}"
    if "aggregation_key" in body:
        text(body["aggregation_key"], "aggregation_key", max_len=100)
    for name in ("source_type_name", "host", "device_name"):
        if name in body:
            text(body[name], name, max_len=NO_LIMIT)
    tags = body.get("tags", [])
    assert isinstance(tags, list), "tags must be a list"
    for index, tag in enumerate(tags):
        # Datadog keeps the first 200 characters of a longer tag rather than refusing it
        text(tag, f"tags[{index}]", max_len=4000)
    return body


# --- PagerDuty: Change Events API -----------------------------------------------------------


def check_pagerduty(request: Received, config: Mapping[str, Any]) -> dict[str, Any]:
    """POST /v2/change/enqueue, 512 KB at most: routing_key (the integration key, in the
    body), payload.summary (1024 at most), payload.timestamp (ISO 8601), payload.source."""
    base = config.get("baseUrl") or "https://events.pagerduty.com"
    path = f"{base_path(base)}/v2/change/enqueue"
    body = json_request(request, path=path, max_bytes=512 * 1024)
    assert isinstance(body, dict), "a change event is a JSON object"
    assert body.get("routing_key") == config["integrationKey"], "routing_key is not the key"
    payload = body.get("payload")
    assert isinstance(payload, dict), "payload must be an object"
    text(payload.get("summary"), "payload.summary", max_len=1024)
    if "timestamp" in payload:
        moment = iso8601(payload["timestamp"], "payload.timestamp")
        near(moment, request, "payload.timestamp", before=TIME_SLACK, after=TIME_SLACK)
    if "source" in payload:
        text(payload["source"], "payload.source", max_len=NO_LIMIT)
    if "custom_details" in payload:
        assert isinstance(payload["custom_details"], dict), "custom_details must be an object"
    links = body.get("links", [])
    assert isinstance(links, list), "links must be a list"
    for index, link in enumerate(links):
        assert isinstance(link, dict), f"links[{index}] must be an object"
        absolute_link(link.get("href"), f"links[{index}].href")
        if "text" in link:
            text(link["text"], f"links[{index}].text", max_len=NO_LIMIT)
    return body


# --- Splunk: HTTP Event Collector -----------------------------------------------------------


def check_splunk(request: Received, config: Mapping[str, Any]) -> dict[str, Any]:
    """POST /services/collector/event with `Authorization: Splunk <token>`: a JSON object
    with a non-blank `event`; `time` epoch seconds; host, source, sourcetype strings."""
    path = f"{base_path(config['base-url'])}/services/collector/event"
    body = json_request(request, path=path, max_bytes=1_000_000)
    assert request.headers.get("authorization") == f"Splunk {config['token']}", (
        "Authorization is not `Splunk <token>`"
    )
    assert isinstance(body, dict), "a HEC event is a JSON object"
    assert body.get("event") not in (None, "", {}), "event is blank: HEC answers 400"
    if "time" in body:
        moment = body["time"]
        assert isinstance(moment, int | float) and not isinstance(moment, bool), "time: number"
        near(moment, request, "time", before=TIME_SLACK, after=TIME_SLACK)
    for name in ("host", "source", "sourcetype", "index"):
        if name in body:
            text(body[name], name, max_len=NO_LIMIT)
    fields = body.get("fields", {})
    assert isinstance(fields, dict), "fields must be an object"
    for name, value in fields.items():
        assert not isinstance(value, dict), f"fields.{name}: indexed fields are flat"
    return body


# --- New Relic: Event API -------------------------------------------------------------------

NEW_RELIC_RESERVED = {"accountId", "appId"}
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_:]{1,255}")


def check_new_relic(request: Received, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """POST /v1/accounts/{accountId}/events with Api-Key (a license key; X-Insert-Key for
    an insert key), 1 MB at most: flat events with eventType, string or number values."""
    account = str(config["accountId"])
    assert account.isdigit(), f"accountId {account!r} is not digits"
    base = config.get("baseUrl") or "https://insights-collector.newrelic.com"
    path = f"{base_path(base)}/v1/accounts/{account}/events"
    body = json_request(request, path=path, max_bytes=1_000_000)
    keys = {request.headers.get("api-key"), request.headers.get("x-insert-key")}
    assert config["apiKey"] in keys, "neither Api-Key nor X-Insert-Key carries the key"
    events = body if isinstance(body, list) else [body]
    assert events, "no event"
    for index, event in enumerate(events):
        _new_relic_event(event, request, f"[{index}]")
    return events


def _new_relic_event(event: object, request: Received, where: str) -> None:
    assert isinstance(event, dict), f"{where} must be an object"
    assert len(event) <= 255, f"{where} has {len(event)} attributes; at most 255"
    kind = event.get("eventType")
    assert isinstance(kind, str) and _EVENT_TYPE.fullmatch(kind), f"{where}.eventType {kind!r}"
    for name, value in event.items():
        text(name, f"{where} attribute name", max_len=255)
        assert name not in NEW_RELIC_RESERVED, f"{where}.{name} is a reserved attribute"
        if isinstance(value, str):
            text(value, f"{where}.{name}", max_len=4096, min_len=0)
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool), (
                f"{where}.{name}: values are strings or numbers, not {type(value).__name__}"
            )
    if "timestamp" in event:
        stamp = integer(event["timestamp"], f"{where}.timestamp")
        seconds = stamp / 1000 if stamp > 10**11 else stamp  # seconds or milliseconds
        near(seconds, request, f"{where}.timestamp", before=TIME_SLACK, after=TIME_SLACK)


# --- Honeycomb: Markers API -----------------------------------------------------------------


def check_honeycomb(request: Received, config: Mapping[str, Any]) -> dict[str, Any]:
    """POST /1/markers/{dataset} with X-Honeycomb-Team: start_time and end_time integer
    epoch seconds, message, type and url strings."""
    base = config.get("baseUrl") or "https://api.honeycomb.io"
    path = f"{base_path(base)}/1/markers/{quote(config['datasetName'], safe='')}"
    body = json_request(request, path=path, max_bytes=1_000_000)
    assert request.headers.get("x-honeycomb-team") == config["apiKey"], "X-Honeycomb-Team"
    assert isinstance(body, dict), "a marker is a JSON object"
    for name in ("start_time", "end_time"):
        if name in body:
            moment = integer(body[name], name)
            near(moment, request, name, before=TIME_SLACK, after=TIME_SLACK)
    for name in ("message", "type"):
        if name in body:
            text(body[name], name, max_len=NO_LIMIT, min_len=0)
    if "url" in body:
        absolute_link(body["url"], "url")
    return body


# --- Grafana: annotations HTTP API ----------------------------------------------------------


def check_grafana(request: Received, config: Mapping[str, Any]) -> dict[str, Any]:
    """POST /api/annotations with `Authorization: Bearer <token>`: text; time and timeEnd
    in epoch milliseconds; tags a list of strings."""
    path = f"{base_path(config['endpointUrl'])}/api/annotations"
    body = json_request(request, path=path, max_bytes=1_000_000)
    assert request.headers.get("authorization") == f"Bearer {config['apiKey']}", "Bearer"
    assert isinstance(body, dict), "an annotation is a JSON object"
    text(body.get("text"), "text", max_len=NO_LIMIT)
    for name in ("time", "timeEnd"):
        if name in body:
            moment = integer(body[name], name)
            near(moment / 1000, request, f"{name} (ms)", before=TIME_SLACK, after=TIME_SLACK)
    tags = body.get("tags", [])
    assert isinstance(tags, list), "tags must be a list"
    for index, tag in enumerate(tags):
        text(tag, f"tags[{index}]", max_len=NO_LIMIT)
    return body


# --- Elasticsearch: index API ---------------------------------------------------------------

_INDEX_FORBIDDEN = set('\\/*?"<>| ,#:')


def check_elastic(request: Received, config: Mapping[str, Any]) -> dict[str, Any]:
    """POST /{index}/_doc with `Authorization: ApiKey <token>`: a valid index name and a
    JSON object document with an ISO 8601 @timestamp."""
    index = config["index"]
    _index_name(index)
    path = f"{base_path(config['url'])}/{quote(index, safe='')}/_doc"
    body = json_request(request, path=path, max_bytes=100 * 1024 * 1024)
    assert request.headers.get("authorization") == f"ApiKey {config['token']}", "ApiKey"
    assert isinstance(body, dict), "a document is a JSON object"
    moment = iso8601(body.get("@timestamp"), "@timestamp")
    near(moment, request, "@timestamp", before=TIME_SLACK, after=TIME_SLACK)
    return body


def _index_name(index: str) -> None:
    """Elasticsearch's index name rules."""
    decoded = unquote(index)
    assert decoded == decoded.lower(), f"index {index!r} must be lowercase"
    assert not _INDEX_FORBIDDEN & set(decoded), f"index {index!r} has a forbidden character"
    assert not decoded.startswith(("-", "_", "+")), f"index {index!r} starts with - _ or +"
    assert decoded not in (".", "..") and 0 < len(decoded.encode()) <= 255, f"index {index!r}"


CHECKS: dict[str, Check] = {
    "datadog": check_datadog,
    "elastic": check_elastic,
    "grafana": check_grafana,
    "honeycomb": check_honeycomb,
    "msteams": check_msteams,
    "new-relic": check_new_relic,
    "pagerduty": check_pagerduty,
    "slack": check_slack,
    "splunk": check_splunk,
}


def checks_with(card_schema: CardValidator | None) -> dict[str, Check]:
    """CHECKS, the Teams check validating cards against `card_schema` when given."""

    def teams(request: Received, config: Mapping[str, Any]) -> object:
        return check_msteams(request, config, card_schema=card_schema)

    return {**CHECKS, "msteams": teams}


# --- the published Adaptive Card schema -----------------------------------------------------

# Microsoft's designer ships the schema served at adaptivecards.io/schemas/adaptive-card.json
# as a module (lib/adaptive-card-schema.js); the adaptivecards package itself ships none.
SCHEMA_PACKAGE = "adaptivecards-designer@2.4.4"
SCHEMA_MEMBER = "package/lib/adaptive-card-schema.js"
SCHEMA_MAX_BYTES = 1_000_000
NPM_TIMEOUT = 300


def adaptive_card_schema(cache: Path) -> dict[str, Any] | None:
    """The schema, fetched with npm once into `cache` (shared by concurrent test processes
    under a file lock); None when npm is not installed."""
    if shutil.which("npm") is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    saved = cache / "adaptive-card.json"
    with _locked(cache / "adaptive-card.lock"):
        if not saved.exists():
            schema = _fetch_schema()
            partial = saved.with_suffix(".partial")
            partial.write_text(json.dumps(schema))
            partial.replace(saved)
    loaded: dict[str, Any] = json.loads(saved.read_text())
    return loaded


def card_validator(schema: Mapping[str, Any]) -> CardValidator:
    """A check of a card against `schema` (draft-06), its enum values case-insensitive as
    Adaptive Card hosts read them (this schema lists `bolder`; cards write `Bolder`)."""
    validator = jsonschema_rs.Draft6Validator(_case_insensitive_enums(schema))

    def validate(card: Any) -> None:
        errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(card)]
        assert not errors, f"the card fails the Adaptive Card schema: {errors[:5]}"

    return validate


def _fetch_schema() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            ["npm", "pack", SCHEMA_PACKAGE, "--silent", "--pack-destination", folder],
            check=True,
            capture_output=True,
            timeout=NPM_TIMEOUT,
        )
        [tarball] = Path(folder).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            member = archive.getmember(SCHEMA_MEMBER)
            assert member.size <= SCHEMA_MAX_BYTES, f"{SCHEMA_MEMBER} is {member.size} B"
            extracted = archive.extractfile(member)
            assert extracted is not None
            module = extracted.read().decode()
    # the module assigns one JSON object literal: `exports.adaptiveCardSchema = {...};`
    start = module.index("exports.adaptiveCardSchema = {") + len("exports.adaptiveCardSchema = ")
    schema: dict[str, Any] = json.loads(module[start : module.rindex("}") + 1])
    assert str(schema.get("id", "")).endswith("adaptive-card.json"), "not the card schema"
    return schema


def _case_insensitive_enums(node: Any, parent: str = "") -> Any:
    """`node` with each enum of words (but an element's `type`) as a case-insensitive
    pattern, as the schemas published from 1.2 on write them."""
    if isinstance(node, list):
        return [_case_insensitive_enums(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _case_insensitive_enums(value, key) for key, value in node.items()}
    words = out.get("enum")
    if parent != "type" and isinstance(words, list) and all(_is_word(w) for w in words):
        del out["enum"]
        out["pattern"] = "^(?i:" + "|".join(words) + ")$"
    return out


def _is_word(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isalnum()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
