"""Schemathesis over the relay's own /openapi.json: no 5xx, every answer as documented.

Each operation gets a bounded number of generated requests (valid and invalid ones), sent
with an admin token to the app on the test Redis. Every response must be a documented
status with a documented content type and match its documented schema.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import heartbeats
from relay.store.client import Redis

pytestmark = pytest.mark.slow

EXAMPLES = 25  # per operation and mode; the whole file takes about a minute on two cores
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _cases() -> list[tuple[str, GenerationMode]]:
    """(`METHOD /path`, mode) per operation, from an app that never touches its Redis.

    Negative mode only where there is something to get wrong: parameters or a body.
    """
    app = create_app(Settings(admin_token="unused"), redis=redis.Redis())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    cases: list[tuple[str, GenerationMode]] = []
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            if operation.get("requestBody") or any(
                _can_be_invalid(parameter) for parameter in operation.get("parameters", [])
            ):
                cases.append((label, GenerationMode.NEGATIVE))
    return cases


def _can_be_invalid(parameter: dict[str, Any]) -> bool:
    # any text is a valid plain-string path segment: nothing to negate there
    plain = parameter.get("schema") == {"type": "string", "title": parameter["schema"].get("title")}
    return parameter["in"] != "path" or not plain


@pytest.fixture
def app(settings: Settings, redis_client: Redis) -> FastAPI:
    """The app on the test Redis (real store, real auth)."""
    # a worker looks alive (/readyz answers 200); `test` waits for a worker's first
    # attempt, and none runs here: keep that wait short
    heartbeats.beat(redis_client, worker="fuzz@test")
    return create_app(settings.model_copy(update={"delivery_timeout": 0.5}), redis=redis_client)


@pytest.fixture
def subscription(app: FastAPI, admin_headers: dict[str, str]) -> str:
    """A subscription the fuzzer's requests can reach (random ids only ever find a 404)."""
    body = {"name": "fuzz", "config": {"url": "http://127.0.0.1:9/hook"}, "on": True}
    with TestClient(app) as client:
        response = client.post("/api/v2/integrations/webhook", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["_id"]
    return sub_id


def _known_path_values(label: str, sub_id: str) -> dict[str, str]:
    """Path parameters that name things that exist, so requests get past the 404s."""
    fixed: dict[str, str] = {}
    if "{integrationKey}" in label:
        fixed["integrationKey"] = "webhook"
    # `test` waits seconds for a worker's attempt that never comes here: a 404 is enough
    if "{id}" in label and not label.endswith("/test"):
        fixed["id"] = sub_id
    return fixed


# schemathesis' own pytest integration (`from_fixture`) does not run on pytest 9, so each
# operation is a parametrized test driving the operation's Hypothesis strategy itself
@pytest.mark.parametrize(("label", "mode"), _cases(), ids=lambda value: str(value))
def test_the_api_answers_every_request_as_documented(
    label: str,
    mode: GenerationMode,
    app: FastAPI,
    subscription: str,
    admin_headers: dict[str, str],
) -> None:
    """Generated requests get no 5xx, and every answer matches the OpenAPI document."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Unknown query parameters are ignored, as Unleash and LaunchDarkly do; the token is
    # always sent (auth failures have tests of their own: test_auth_matrix.py)
    schema.config.generation.update(allow_extra_parameters=False, with_security_parameters=False)
    operation = schema.find_operation_by_label(label)
    assert operation is not None
    fixed = _known_path_values(label, subscription)

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=admin_headers, checks=CHECKS)

    answers_as_documented()


def test_every_operation_documents_its_answers(app_client: TestClient) -> None:
    """Each operation declares a success schema and the errors its auth can answer."""
    document = app_client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, f"{method.upper()} {path} declares no success response"
            for code in success:
                content = responses[code].get("content", {})
                assert any(media.get("schema") for media in content.values()) or code == "204", (
                    f"{method.upper()} {path} {code} has no schema"
                )
            if (method, path) == ("get", "/console/session"):
                # reading one's own session: 401 without one, never 403
                assert "401" in responses, f"{method.upper()} {path}: auth errors"
            elif path not in {"/healthz", "/readyz"}:
                assert {"401", "403"} <= set(responses), f"{method.upper()} {path}: auth errors"
