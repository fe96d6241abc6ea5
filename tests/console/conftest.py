"""Fixtures of the console's browser tests: a real relay (API served by uvicorn, a real
Celery worker, its own Redis), receivers on 127.0.0.1, seed data put in through the API,
and Debian's Chromium driven by Playwright.

Chromium is /usr/bin/chromium (`apt-get install chromium`; Playwright's own browser
download is not used). Without it the tests are skipped, saying so, unless the
environment variable CI is set: in CI a missing browser fails them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from relay.api.app import create_app
from relay.cli.embedded_redis import start_redis
from relay.settings import Settings
from relay.store.client import connect
from tests import support
from tests.conftest import Receiver

CHROMIUM = Path("/usr/bin/chromium")
ADMIN_TOKEN = "console-admin-token"
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# the machine may be busy with other tests: waits are generous, never fixed sleeps
expect.set_options(timeout=20_000)


@dataclass
class Relay:
    """The relay under test: its URL, an admin client of its API, tokens by role, receivers."""

    url: str
    settings: Settings
    api: httpx.Client
    tokens: dict[str, str]
    receivers: list[Receiver] = field(default_factory=list)

    def receiver(self) -> Receiver:
        """A new receiver on 127.0.0.1, closed with the module."""
        self.receivers.append(Receiver())
        return self.receivers[-1]

    def subscribe(self, url: str, *, name: str, **fields: Any) -> str:
        """A webhook subscription (unleash format) made through the API; its id."""
        return support.subscribe_via_api(self.api, url, name=name, **fields)

    def record(self, *events: dict[str, Any]) -> list[int]:
        """Record Unleash events through POST /api/events; their ids."""
        return support.post_events(self.api, events, headers={})

    def get(self, path: str, **params: Any) -> Any:
        response = self.api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def deliveries(self, sub_id: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(
            f"{support.SUBSCRIPTIONS}/{sub_id}/deliveries", **params
        )["items"]
        return items


@pytest.fixture(scope="module")
def relay(
    tmp_path_factory: pytest.TempPathFactory, start_module_worker: Callable[..., Any]
) -> Iterator[Relay]:
    """A relay of this module's own: Redis, the API on a port, a worker with beat."""
    redis_server = start_redis(tmp_path_factory.mktemp("console-redis"))
    settings = support.e2e_settings(
        redis_url=redis_server.url,
        admin_token=ADMIN_TOKEN,
        data_dir=tmp_path_factory.mktemp("console-data"),
    )
    app = create_app(settings, redis=connect(redis_server.url))
    start_module_worker(settings, beat=True)
    with (
        support.serve_in_thread(app, settings) as url,
        httpx.Client(base_url=url, headers={"Authorization": ADMIN_TOKEN}, timeout=30) as api,
    ):
        tokens = {"admin": ADMIN_TOKEN}
        for role in ("reader", "writer"):
            response = api.post("/api/v2/tokens", json={"name": f"console {role}", "role": role})
            assert response.status_code == 201, response.text
            tokens[role] = response.json()["token"]
        made = Relay(url, settings, api, tokens)
        yield made
        for receiver in made.receivers:
            receiver.close()
    redis_server.stop()


# Module-scoped, not session-scoped: while Playwright's sync API is started it marks an
# asyncio loop as running in the main thread, and another module's asyncio.run() would
# then fail (pytest tears a module's fixtures down before the next module's tests run)
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless; skipped without it outside CI, failed without it in CI."""
    if not CHROMIUM.exists():
        reason = f"no {CHROMIUM}: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the browser tests must run)")
        pytest.skip(reason)
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield launched
    launched.close()


@dataclass
class PageProblems:
    """What went wrong in the page: uncaught errors, CSP violations, dialogs opened."""

    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, relay: Relay, problems: PageProblems) -> Iterator[Page]:
    """A fresh browser context (no cookie) at 1280x800 on the console, nothing signed in.

    The test fails at teardown when the page threw, broke the CSP or opened a dialog.
    """
    context = browser.new_context(viewport=VIEWPORT, base_url=relay.url)  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    opened = context.new_page()
    opened.on("pageerror", lambda error: problems.errors.append(str(error)))
    opened.on("console", problems.on_console)

    def dismiss(dialog: Any) -> None:
        problems.dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", dismiss)
    yield opened
    context.close()
    assert problems == PageProblems(), "the page threw, broke its CSP or opened a dialog"


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Save a screenshot of the page as <name>.png: in docs/console/ when
    RELAY_CONSOLE_SCREENSHOTS=1 (the ones docs/console.md shows), else in tmp_path."""
    folder = SCREENSHOTS if os.environ.get("RELAY_CONSOLE_SCREENSHOTS") == "1" else tmp_path

    def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return take


@dataclass(frozen=True)
class Scenario:
    """What the seed put in: subscriptions by name (their ids), event ids by name."""

    subscriptions: dict[str, str]
    events: dict[str, int]
    ok: Receiver
    down: Receiver


PRODUCTION_ONLY = [
    {"effect": "allow", "resources": ["proj/*:env/production:flag/*"], "actions": ["*"]}
]
PAYMENTS_ONLY = [{"effect": "allow", "resources": ["proj/payments:env/*:flag/*"], "actions": ["*"]}]


def flag_event(kind: str, feature: str, project: str, **fields: Any) -> dict[str, Any]:
    """An Unleash event about a flag, as Unleash posts it."""
    return {
        "type": kind,
        "createdBy": fields.pop("createdBy", "alice@example.com"),
        "featureName": feature,
        "project": project,
        "data": {"name": feature, **fields.pop("data", {})},
        "tags": [],
        **fields,
    }


@pytest.fixture(scope="module")
def scenario(relay: Relay) -> Scenario:
    """Four subscriptions (one to a receiver answering 500, whose deliveries die) and six
    events, delivered before any test looks."""
    ok, down = relay.receiver(), relay.receiver()
    down.always(500, body=b"upstream unavailable")
    subs = {
        "Audit mirror": relay.subscribe(ok.url, name="Audit mirror"),
        "Production changes": relay.subscribe(
            ok.url,
            name="Production changes",
            statements=PRODUCTION_ONLY,
            secret="production-signing-secret",
        ),
        "Payments team": relay.subscribe(down.url, name="Payments team", statements=PAYMENTS_ONLY),
        "Paused staging hook": relay.subscribe(ok.url, name="Paused staging hook", on=False),
    }
    seeded = [
        ("created", flag_event("feature-created", "checkout-v2", "payments")),
        (
            "enabled",
            flag_event(
                "feature-environment-enabled", "checkout-v2", "payments", environment="production"
            ),
        ),
        (
            "disabled",
            flag_event(
                "feature-environment-disabled",
                "search-ranking",
                "default",
                environment="development",
            ),
        ),
        (
            "strategy",
            flag_event(
                "feature-strategy-updated",
                "onboarding-tour",
                "growth",
                environment="production",
                createdBy="bob@example.com",
                data={"strategyName": "flexibleRollout", "parameters": {"rollout": "25"}},
            ),
        ),
        ("archived", flag_event("feature-archived", "old-banner", "default")),
        ("tagged", flag_event("feature-tagged", "checkout-v2", "payments", data={"value": "beta"})),
    ]
    ids = relay.record(*(event for _, event in seeded))
    events = {name: event_id for (name, _), event_id in zip(seeded, ids, strict=True)}
    # every event to the mirror, two to Production changes, three dead for Payments team
    ok.wait_for(len(ids) + 2, timeout=60)
    support.eventually(
        lambda: len(relay.deliveries(subs["Payments team"], state="dead")) == 3,
        timeout=60,
        what="the Payments team's deliveries to die",
    )
    return Scenario(subs, events, ok, down)
