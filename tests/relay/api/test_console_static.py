"""The console's page and files: served from the package with security headers, nothing
else reachable under /console, however the path is spelled."""

from __future__ import annotations

import json
import re
import socket
from importlib.resources import files
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC = files("relay.console").joinpath("static")
ASSETS = sorted(
    entry.name
    for entry in STATIC.iterdir()
    if entry.name != "index.html" and entry.name.endswith((".js", ".css"))
)


def _assert_console_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


def test_the_page_is_served_with_security_headers_and_not_cached(app_client: TestClient) -> None:
    """GET /console: the package's index.html as HTML, CSP and no-store."""
    response = app_client.get("/console")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == STATIC.joinpath("index.html").read_bytes()
    assert response.headers["cache-control"] == "no-store"
    _assert_console_headers(response)


@pytest.mark.parametrize("name", ASSETS)
def test_every_script_and_style_sheet_is_served(app_client: TestClient, name: str) -> None:
    """Each .js and .css file of relay/console/static, as it is, with its type."""
    response = app_client.get(f"/console/assets/{name}")
    assert response.status_code == 200
    assert response.content == STATIC.joinpath(name).read_bytes()
    kind = "text/javascript" if name.endswith(".js") else "text/css"
    assert response.headers["content-type"] == f"{kind}; charset=utf-8"
    _assert_console_headers(response)


def test_an_unchanged_file_is_not_sent_again(app_client: TestClient) -> None:
    """A file's ETag answers a conditional GET with 304 and no body."""
    first = app_client.get("/console/assets/app.js")
    again = app_client.get(
        "/console/assets/app.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    _assert_console_headers(again)


def test_the_page_runs_no_inline_script_or_style(app_client: TestClient) -> None:
    """What the CSP would block is not in the page: every script has a src, no style
    element or attribute, no event handler attribute, no javascript: URL."""
    page = app_client.get("/console").text
    scripts = re.findall(r"<script\b[^>]*>", page, flags=re.IGNORECASE)
    assert scripts and all("src=" in tag for tag in scripts)
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", page, flags=re.IGNORECASE)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:", page, flags=re.IGNORECASE)


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/index.html",  # the page only at /console
        "/console/assets/nope.js",
        "/console/assets/APP.JS",
        "/console/assets/..%2f..%2fsettings.py",
        "/console/assets/%2e%2e%2f%2e%2e%2fsettings.py",
        "/console/assets/%2e%2e",
        "/console/assets/..%5c..%5csettings.py",
        "/console/assets/%2fetc%2fpasswd",
        "/console/assets//etc/passwd",
        "/console/assets/app.js%00.css",
        "/console/assets/app.js%00",
        "/console/assets/__init__.py",
        "/console/assets/",
        "/console/static/app.js",
        "/console/anything",
        "/console/session/extra",
    ],
)
def test_nothing_else_is_served(app_client: TestClient, path: str) -> None:
    """Names not in the allow-list, encoded traversal, absolute paths, NUL: 404 in the
    seeds' shape, still with the console's headers."""
    response = app_client.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    _assert_console_headers(response)


@pytest.mark.parametrize(
    "target",
    [
        b"/console/assets/../../settings.py",
        b"/console/assets/../../../../../../etc/passwd",
        b"/console/assets/./app.js/../../../__init__.py",
        b"/console/../relay/console/__init__.py",
        b"/console/assets/%2e%2e/%2e%2e/settings.py",
        b"/console/assets/app.js\x00",
    ],
)
def test_literal_traversal_through_the_server_is_404(live_api: str, target: bytes) -> None:
    """Request lines sent as they are (no client tidies the dots): never a file outside
    the allow-list, never a 5xx."""
    address = urlsplit(live_api)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status, body = answer.split(b"\r\n", 1)[0], answer.split(b"\r\n\r\n", 1)[1]
    if b"\x00" in target:  # refused by the HTTP parser before any route
        assert status.split()[1] == b"400", (target, status)
    else:
        assert status.split()[1] == b"404", (target, status)
        assert json.loads(body)["code"] == "not_found"
