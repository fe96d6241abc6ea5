"""Every answer that is not a success has the seeds' shape: {code, message} (+ errors[])."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import tokens
from relay.store.client import Redis
from relay.store.tokens import Role


def _client(settings: Settings, redis_client: Redis, **changes: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes), redis=redis_client))


def _assert_error(response: object, status: int, code: str) -> dict[str, object]:
    assert hasattr(response, "status_code") and hasattr(response, "json")
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_unknown_route_is_404_not_found(app_client: TestClient) -> None:
    """A path no route serves is 404 not_found naming the method and path."""
    body = _assert_error(app_client.get("/api/v2/nothing-here"), 404, "not_found")
    assert body["message"] == "no route for GET /api/v2/nothing-here"


def test_wrong_method_is_405_with_allow(app_client: TestClient) -> None:
    """A known path with a method it does not serve is 405 method_not_allowed, with Allow."""
    response = app_client.delete("/healthz")
    body = _assert_error(response, 405, "method_not_allowed")
    assert body["message"] == "method DELETE not allowed on /healthz"
    assert response.headers["allow"] == "GET"


def test_malformed_json_is_400_with_errors(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A body that is not JSON is 400 invalid_request with an errors[] entry, not FastAPI's 422."""
    response = app_client.post(
        "/api/v2/tokens",
        content=b'{"name": "x", "role": ',
        headers={**admin_headers, "content-type": "application/json"},
    )
    body = _assert_error(response, 400, "invalid_request")
    assert body["message"] == "malformed JSON"
    errors = body["errors"]
    assert isinstance(errors, list) and len(errors) == 1
    assert errors[0]["attribute"] == "body"
    assert errors[0]["reason"].startswith("malformed JSON")


def test_wrong_types_are_400_naming_each_field(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Each field that fails validation gets its own {attribute, reason}."""
    response = app_client.post("/api/v2/tokens", json={"name": 5}, headers=admin_headers)
    body = _assert_error(response, 400, "invalid_request")
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {e["attribute"] for e in errors} == {"name", "role"}
    assert all(e["reason"] for e in errors)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_body_is_413(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str], chunked: bool
) -> None:
    """A body over RELAY_MAX_BODY_BYTES is 413 payload_too_large, declared or streamed."""
    # given
    payload = b'{"name": "' + b"x" * 200 + b'", "role": "reader"}'
    content = iter([payload[:100], payload[100:]]) if chunked else payload
    # when
    with _client(settings, redis_client, max_body_bytes=64) as client:
        response = client.post(
            "/api/v2/tokens",
            content=content,
            headers={**admin_headers, "content-type": "application/json"},
        )
    # then
    body = _assert_error(response, 413, "payload_too_large")
    assert "64 bytes" in str(body["message"])
    assert tokens.list_tokens(redis_client) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "rly_unknown"}, {"Authorization": "Bearer "}],
    ids=["absent", "empty", "unknown", "empty bearer"],
)
def test_missing_or_unknown_token_is_401(app_client: TestClient, headers: dict[str, str]) -> None:
    """No token, an empty one or one the relay does not know: 401 unauthorized."""
    _assert_error(app_client.get("/api/v2/tokens", headers=headers), 401, "unauthorized")


def test_role_that_may_not_is_403(app_client: TestClient, redis_client: Redis) -> None:
    """A valid token whose role lacks the right: 403 forbidden naming the role."""
    _, secret = tokens.create_token(redis_client, name="r", role=Role.READER)
    response = app_client.post(
        "/api/v2/tokens", json={"name": "x", "role": "admin"}, headers={"Authorization": secret}
    )
    body = _assert_error(response, 403, "forbidden")
    assert "reader" in str(body["message"])


def test_rate_limit_is_429_with_retry_after_and_ratelimit_headers(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Past the per-token burst: 429 rate_limited, Retry-After and the X-Ratelimit-* headers."""
    # given: 1 request per second, bursts of 2
    with _client(settings, redis_client, rate_limit_per_second=1, rate_limit_burst=2) as client:
        # when
        answers = [client.get("/api/v2/tokens", headers=admin_headers) for _ in range(3)]
    # then
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["X-Ratelimit-Global-Remaining"] == "1"
    assert answers[1].headers["X-Ratelimit-Route-Remaining"] == "0"
    limited = answers[2]
    _assert_error(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-Ratelimit-Global-Remaining"] == "0"
    assert int(limited.headers["X-Ratelimit-Reset"]) > 0


def test_rate_limit_is_off_by_default(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Without RELAY_RATE_LIMIT_PER_SECOND, requests are neither limited nor given the headers."""
    answers = [app_client.get("/api/v2/tokens", headers=admin_headers) for _ in range(20)]
    assert {a.status_code for a in answers} == {200}
    assert "X-Ratelimit-Global-Remaining" not in answers[-1].headers


def test_unexpected_exception_is_500_without_details(
    settings: Settings, redis_client: Redis
) -> None:
    """A bug surfaces as 500 internal_error in the same shape, never a traceback."""
    # given: an app with a route that fails
    app = create_app(settings, redis=redis_client)

    def broken() -> None:
        raise RuntimeError("secret detail")

    app.add_api_route("/broken", broken)
    # when
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken")
    # then
    body = _assert_error(response, 500, "internal_error")
    assert "secret detail" not in response.text
    assert set(body) == {"code", "message"}


def test_unreachable_redis_is_503(client_without_redis: TestClient) -> None:
    """When the store cannot be reached, a request needing it is 503 service_unavailable."""
    response = client_without_redis.get("/api/v2/tokens", headers={"Authorization": "rly_x"})
    _assert_error(response, 503, "service_unavailable")
