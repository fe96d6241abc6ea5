"""Unleash's webhook addon parameters at delivery: body template, content type, headers;
and LaunchDarkly's plain secrets signing what receivers verify."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from policies import map_event
from relay.subscriptions.config import validate_config
from workers.delivery import signing
from workers.delivery.payloads import (
    BodyTemplateError,
    WebhookParts,
    WebhookPartsError,
    render,
    webhook_parts,
)
from workers.errors import PermanentDeliveryError

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "data/shared/fixtures/unleash/unleash-8.2.0-events-sample.jsonl"
)
SAMPLE_EVENTS = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
URL = "https://h.example.com/hook"
# the event of Unleash's own webhook test (SYSTEM_USER_ID is -1337)
CREATED = {
    "id": 1,
    "createdAt": "2024-07-24T00:00:00.000Z",
    "createdByUserId": -1337,
    "type": "feature-created",
    "createdBy": "some@user.com",
    "featureName": "some-toggle",
    "project": "default",
    "data": {"name": "some-toggle", "enabled": False, "strategies": [{"name": "default"}]},
}
# the placeholder of Unleash's webhook definition, with the markdown its description offers
UNLEASH_PLACEHOLDER = """{
  "event": "{{event.type}}",
  "createdBy": "{{event.createdBy}}",
  "featureToggle": "{{event.data.name}}",
  "timestamp": "{{event.data.createdAt}}",
  "json": {{{eventJson}}},
  "markdown": "{{eventMarkdown}}"
}"""


def parts(event: dict[str, Any], unleash_url: str = "", **config: Any) -> WebhookParts:
    """webhook_parts of `event` under a config of `config`'s fields."""
    return webhook_parts(event, config, target=map_event(event), unleash_url=unleash_url)


def text(event: dict[str, Any], template: str, unleash_url: str = "") -> str:
    """The body `template` renders for `event`, as text."""
    return parts(event, unleash_url, bodyTemplate=template).body.decode()


def test_without_a_template_the_body_is_the_format_as_before() -> None:
    """No bodyTemplate: the body is `render` in config.format, sent as application/json."""
    for fmt in ("unleash", "launchdarkly"):
        sent = parts(CREATED, format=fmt)
        assert sent.body == render(CREATED, fmt=fmt, target=map_event(CREATED))
        assert sent.content_type == "application/json"
        assert sent.headers == {}


def test_an_unleash_addon_config_sends_what_unleash_sends() -> None:
    """Unleash's own test config, validated as is, gives its body, content type and headers."""
    # given
    config = validate_config(
        {
            "url": URL,
            "bodyTemplate": "{{event.type}} on toggle {{event.data.name}}",
            "contentType": "text/plain",
            "authorization": "API KEY 123abc",
            "customHeaders": '{ "MY_CUSTOM_HEADER": "MY_CUSTOM_VALUE" }',
        }
    ).config
    # when
    sent = webhook_parts(CREATED, config, target=map_event(CREATED))
    # then
    assert sent.body == b"feature-created on toggle some-toggle"
    assert sent.content_type == "text/plain"
    assert sent.headers == {
        "Authorization": "API KEY 123abc",
        "MY_CUSTOM_HEADER": "MY_CUSTOM_VALUE",
    }


def test_headers_merge_authorization_then_custom_then_headers() -> None:
    """Configured headers come in order: authorization, customHeaders, headers."""
    sent = parts(
        CREATED,
        authorization="Bearer t",
        customHeaders='{"X-C2": "2", "X-C1": "1"}',
        headers={"X-H": "h"},
    )
    assert list(sent.headers.items()) == [
        ("Authorization", "Bearer t"),
        ("X-C2", "2"),
        ("X-C1", "1"),
        ("X-H", "h"),
    ]


def test_unleash_snapshot_body_is_reproduced_byte_for_byte() -> None:
    """eventJson (the event's JSON as a JSON string) and eventMarkdown as Unleash renders them."""
    template = '{\n  "json": {{{eventJson}}},\n  "markdown": "{{eventMarkdown}}"\n}'
    body = text(CREATED, template, unleash_url="http://some-url.com/")
    event_json = (
        '{\\"id\\":1,\\"createdAt\\":\\"2024-07-24T00:00:00.000Z\\",\\"createdByUserId\\":-1337,'
        '\\"type\\":\\"feature-created\\",\\"createdBy\\":\\"some@user.com\\",'
        '\\"featureName\\":\\"some-toggle\\",\\"project\\":\\"default\\",\\"data\\":{\\"name\\":'
        '\\"some-toggle\\",\\"enabled\\":false,\\"strategies\\":[{\\"name\\":\\"default\\"}]}}'
    )
    markdown = (
        "*some@user.com* created *[some-toggle](http://some-url.com/projects/default/features/"
        "some-toggle)* in project *[default](http://some-url.com/projects/default)*"
    )
    assert body == f'{{\n  "json": "{event_json}",\n  "markdown": "{markdown}"\n}}'
    assert json.loads(json.loads(body)["json"]) == CREATED


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{{event.createdBy}}",
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;&#x2F;b&gt; &#39;c&#39; &#x60;d&#x60; e&#x3D;f",
        ),
        ("{{{event.createdBy}}}", "<b>\"A&B\"</b> 'c' `d` e=f"),
        ("{{&event.createdBy}}", "<b>\"A&B\"</b> 'c' `d` e=f"),
        ("{{event.id}} {{event.data.enabled}} [{{event.environment}}]", "1 false []"),
        ("{{#event.data.strategies}}{{name}};{{/event.data.strategies}}", "default;"),
        ("{{^event.data.enabled}}off{{/event.data.enabled}}", "off"),
    ],
)
def test_mustache_renders_as_mustache_js(template: str, expected: str) -> None:
    """`{{x}}` HTML-escapes as mustache.js does (& < > " ' / ` =); `{{{x}}}` and `{{&x}}` don't."""
    event = {**CREATED, "createdBy": "<b>\"A&B\"</b> 'c' `d` e=f", "environment": None}
    assert text(event, template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{eventMarkdown}}", '*a"b $&* triggered *segment-created*'),
        ('"{{eventMarkdown}}"', '"*a\\"b $&* triggered *segment-created*"'),
        (
            '"x" {{eventMarkdown}} "{{{eventMarkdown}}}"',
            '"x" *a"b $&* triggered *segment-created* "*a\\"b $&* triggered *segment-created*"',
        ),
        ('"\\" {{eventMarkdown}}"', '"\\" *a\\"b $&* triggered *segment-created*"'),
        ('\\"{{eventMarkdown}}', '\\"*a"b $&* triggered *segment-created*'),
    ],
)
def test_event_markdown_is_json_escaped_inside_json_strings_only(
    template: str, expected: str
) -> None:
    """eventMarkdown is never HTML-escaped, and JSON-escaped where it stands inside quotes."""
    event = {"id": 3, "type": "segment-created", "createdBy": 'a"b $&'}
    assert text(event, template) == expected


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            {"type": "feature-environment-enabled", "environment": "production"},
            "*alice* enabled *checkout* for the *production* environment in project *default*",
        ),
        (
            {
                "type": "feature-strategy-update",
                "environment": "production",
                "preData": {"name": "flexibleRollout", "title": "Gradual"},
                "data": {"name": "flexibleRollout"},
            },
            "*alice* updated *checkout* in project *default* by updating strategy *Gradual* "
            "in *production*",
        ),
        (
            {"type": "feature-tagged", "data": {"type": "simple", "value": "beta"}},
            "*alice* tagged *checkout* with *simple:beta* in project *default*",
        ),
        (
            {"type": "feature-project-change", "data": {"oldProject": "legacy"}},
            "*alice* moved *checkout* from *legacy* to *default*",
        ),
        ({"type": "feature-updated"}, "*alice* triggered *feature-updated*"),
        (
            {"type": "feature-created", "createdBy": None},
            "** created *checkout* in project *default*",
        ),
    ],
)
def test_event_markdown_follows_unleash_lines(event: dict[str, Any], line: str) -> None:
    """Common feature events read as Unleash's lines; others fall back to "triggered"."""
    base = {"id": 5, "createdBy": "alice", "featureName": "checkout", "project": "default"}
    assert text({**base, **event}, "{{eventMarkdown}}") == line


def test_event_markdown_links_with_the_unleash_url() -> None:
    """Given the Unleash URL, names link to their pages; an archived flag stays unlinked."""
    event = {"type": "feature-archived", "createdBy": "a", "featureName": "f", "project": "p"}
    line = text(event, "{{eventMarkdown}}", unleash_url="https://unleash.example.com")
    assert line == "*a* archived *f* in project *[p](https://unleash.example.com/projects/p)*"


@pytest.mark.parametrize("event", SAMPLE_EVENTS, ids=lambda e: f"{e['id']}-{e['type']}")
def test_unleash_placeholder_renders_json_for_real_events(event: dict[str, Any]) -> None:
    """Unleash's example template gives parseable JSON for every real event, its event inside."""
    document = json.loads(text(event, UNLEASH_PLACEHOLDER, unleash_url="https://u.example.com"))
    assert json.loads(document["json"]) == event
    assert document["event"] == event["type"] and document["markdown"].startswith("*")


def test_content_type_is_the_configured_one() -> None:
    """contentType sets the delivery's Content-Type, with or without a template."""
    assert parts(CREATED, contentType="text/plain; charset=utf-8").content_type == (
        "text/plain; charset=utf-8"
    )
    assert parts(CREATED, contentType="text/plain", bodyTemplate="x").content_type == "text/plain"


def test_a_template_that_does_not_compile_is_a_body_template_error() -> None:
    """A stored template that cannot compile makes the delivery dead with the reason."""
    with pytest.raises(BodyTemplateError, match=r"config\.bodyTemplate") as caught:
        parts(CREATED, bodyTemplate="{{#event.data}}never closed")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, PermanentDeliveryError)


def test_a_body_past_its_bound_is_a_body_template_error() -> None:
    """A template rendering past 1 MB fails instead of growing without bound."""
    event = {**CREATED, "data": {"blob": "x" * 200_000}}
    with pytest.raises(BodyTemplateError):
        parts(event, bodyTemplate="{{{eventJson}}}" * 6)


def test_markdown_copies_are_bounded_too() -> None:
    """Many eventMarkdown copies of a long line cannot outgrow the body's bound."""
    event = {"type": "x", "createdBy": "u" * 10_000}
    with pytest.raises(BodyTemplateError, match="bytes"):
        parts(event, bodyTemplate="{{eventMarkdown}}" * 200)


def test_a_body_that_is_not_unicode_is_a_body_template_error() -> None:
    """An event holding a lone surrogate (JSON allows the escape) cannot make a UTF-8 body."""
    event = {"type": "x", "createdBy": "\ud800"}
    for template in ("{{{event.createdBy}}}", "{{{eventJson}}}", "{{eventMarkdown}}"):
        with pytest.raises(BodyTemplateError, match="surrogate"):
            parts(event, bodyTemplate=template)


def test_unreadable_stored_custom_headers_make_the_delivery_dead() -> None:
    """customHeaders stored without checks and not parseable: a permanent error, not a crash."""
    with pytest.raises(WebhookPartsError, match=r"config\.customHeaders"):
        parts(CREATED, customHeaders="{not json")


def test_a_plain_secret_signs_what_receivers_verify() -> None:
    """A LaunchDarkly plain secret: standardwebhooks verifies with its UTF-8 bytes as the key,
    and X-LD-Signature is the hex HMAC-SHA256 of the body under those bytes."""
    # given
    secret = "my-very-secret-value-123"
    body = parts(CREATED, bodyTemplate='{"json": {{{eventJson}}}}').body
    # when
    headers = signing.sign(msg_id="msg_1", timestamp=int(time.time()), body=body, secrets=[secret])
    # then
    assert Webhook(secret.encode()).verify(body, headers) == json.loads(body)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-LD-Signature"] == expected
