"""An operator's integration whose templates use every helper and built-in block: relay
renders its request as Handlebars.js renders the same templates over the same context."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from relay.integrations.catalog import load_catalog
from relay.integrations.render import EventContext, render_request
from relay.settings import Settings
from tests.relay.integrations.conftest import render_with_node
from tests.relay.integrations.test_manifests import manifest, write_integration

URL = "{{{base}}}/hooks/{{pathEncode channel}}?team={{queryEncode team}}"
AUTHORIZATION = "{{{basicAuthHeaderValue user token}}}"
BODY = """{{!-- every block and helper relay supports --}}
{
  "title": "{{{title.plainText}}}",
  "escaped": "{{name}}",
  "when": {{formatWithOffset timestamp.milliseconds 3600 "seconds"}},
  "simple": "{{formatWithOffset timestamp.milliseconds 0 "simple"}}",
  "tags": [{{#each tags}}
    {"n": {{@index}}, "first": {{@first}}, "last": {{@last}}, "tag": "{{{this}}}"}
    {{~#unless @last}},{{/unless}}
  {{/each}}],
  "env": {{#with project.environment}}"{{{key}}}"{{else}}null{{/with}},
  "production": {{#equal project.environment.key "production"}}true{{else}}false{{/equal}},
  "staging": {{#equalWithElse project.environment.key "staging"}}true
    {{~else}}false{{/equalWithElse}},
  "level": "{{lookup formVariables "level"}}",
  {{#if comment}}"comment": "{{{comment}}}",
  {{else if details.plainText}}"details": "{{{details.plainText}}}",
  {{/if}}
  {{~#unless formVariables.loud}}
  "quiet": true
  {{~else}}
  "quiet": false
  {{~/unless}}
}
"""
EVENT = {
    "id": 77,
    "type": "feature-environment-enabled",
    "createdBy": 'o"brien@example.com',
    "createdAt": "2026-12-04T19:20:03.123Z",
    "featureName": "check<out>&more",
    "project": "web",
    "environment": "production",
    "data": {"enabled": True},
    "preData": {"enabled": False},
    "tags": [{"type": "team", "value": "core"}, {"type": "area", "value": "pay\nments"}],
}
CONFIG = {
    "base": "https://hooks.example.com",
    "channel": "ops alerts/é",
    "team": "a&b=c d",
    "user": "relay",
    "token": "s3cr3t:x",
    "level": "warn",
}


def _integration(tmp_path: Path, settings: Settings) -> Any:
    document = manifest(
        formVariables=[
            {"key": key, "name": key, "type": "uri" if key == "base" else "string"}
            for key in CONFIG
        ]
        + [{"key": "loud", "name": "loud", "type": "boolean", "isOptional": True}]
    )
    hook = document["capabilities"]["auditLogEventsHook"]
    hook["endpoint"]["url"] = URL
    hook["endpoint"]["headers"][1]["value"] = AUTHORIZATION
    write_integration(tmp_path, "everything", document, {"templates/default.json.hbs": BODY})
    found = load_catalog(settings.model_copy(update={"integrations_dir": tmp_path}))
    return found.get("everything")


def test_every_helper_renders_as_handlebars_js_does(
    tmp_path: Path, settings: Settings, node_modules: Path
) -> None:
    """URL, header and body of a request match Handlebars.js over the same context."""
    # given
    integration = _integration(tmp_path, settings)
    context = EventContext.of(EVENT, base_url="https://relay.example.com")
    # when
    request = render_request(integration, CONFIG, context)
    # then: the same templates through Handlebars.js, with LaunchDarkly's helpers
    body_context = {**context.escaped, "formVariables": CONFIG}
    url, header, body = render_with_node(
        node_modules,
        [(URL, CONFIG, False), (AUTHORIZATION, CONFIG, False), (BODY, body_context, False)],
    )
    assert request.url == url["output"]
    assert request.headers["Authorization"] == header["output"]
    assert request.body.decode() == body["output"]
    # and what users rely on, said plainly
    assert request.url == ("https://hooks.example.com/hooks/ops%20alerts/%C3%A9?team=a%26b%3Dc%20d")
    assert header["output"] == "Basic " + base64.b64encode(b"relay:s3cr3t:x").decode()
    document = json.loads(request.body)
    assert (
        document["title"] == 'o"brien@example.com turned on the flag check<out>&more in production'
    )
    assert document["escaped"] == "check&lt;out&gt;&amp;more"
    assert document["tags"] == [
        {"n": 0, "first": True, "last": False, "tag": "team:core"},
        {"n": 1, "first": False, "last": True, "tag": "area:pay\nments"},
    ]
    assert document["production"] is True and document["staging"] is False
    assert document["level"] == "warn" and document["quiet"] is True
    assert document["details"] == "feature-environment-enabled: changed enabled"
