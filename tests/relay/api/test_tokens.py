"""Tokens over the API: created once-shown, listed without secrets, revoked at once."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _create(
    client: TestClient, headers: dict[str, str], role: str, name: str = "t"
) -> dict[str, str]:
    response = client.post("/api/v2/tokens", json={"name": name, "role": role}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def test_created_token_authenticates_with_its_role(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A token created over the API works at once, as a plain header or a Bearer one."""
    # given
    created = _create(app_client, admin_headers, "reader", "dash")
    # when
    plain = app_client.get("/api/v2/tokens", headers={"Authorization": created["token"]})
    bearer = app_client.get(
        "/api/v2/tokens", headers={"Authorization": f"Bearer {created['token']}"}
    )
    # then: a reader may not manage tokens, so both are authenticated but forbidden
    assert plain.status_code == bearer.status_code == 403
    assert plain.json()["code"] == "forbidden"


def test_list_never_shows_secrets(app_client: TestClient, admin_headers: dict[str, str]) -> None:
    """GET /api/v2/tokens lists names and roles, no secret."""
    created = _create(app_client, admin_headers, "writer", "ci")
    listed = app_client.get("/api/v2/tokens", headers=admin_headers).json()
    assert listed["totalCount"] == 1
    item = listed["items"][0]
    assert item == {
        "_id": created["_id"],
        "name": "ci",
        "role": "writer",
        "creationDate": item["creationDate"],
    }
    assert created["token"] not in str(listed)


def test_revoked_token_is_refused_at_once(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """DELETE revokes: the next request with that token is 401."""
    created = _create(app_client, admin_headers, "admin")
    token_headers = {"Authorization": created["token"]}
    assert app_client.get("/api/v2/tokens", headers=token_headers).status_code == 200
    assert (
        app_client.delete(f"/api/v2/tokens/{created['_id']}", headers=admin_headers).status_code
        == 204
    )
    response = app_client.get("/api/v2/tokens", headers=token_headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_deleting_unknown_token_is_404(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """An unknown token id is 404 not_found."""
    response = app_client.delete("/api/v2/tokens/nope", headers=admin_headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_bad_role_is_400_with_errors(app_client: TestClient, admin_headers: dict[str, str]) -> None:
    """An unknown role or an unknown field is a 400 naming the attribute."""
    response = app_client.post(
        "/api/v2/tokens", json={"name": "x", "role": "root", "extra": 1}, headers=admin_headers
    )
    assert response.status_code == 400
    attributes = {e["attribute"] for e in response.json()["errors"]}
    assert attributes == {"role", "extra"}
