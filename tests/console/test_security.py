"""The console's security in a real browser: sign-out ends the session, readers get no
write controls (and the API refuses them), attacker-controlled text stays text."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests import support
from tests.console.conftest import PageProblems, Relay, Scenario, flag_event
from tests.console.steps import open_page, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# what these would do, were they markup: set a flag the test reads, or open a dialog
IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
SCRIPT = "<script>window.__xss=1;alert(1)</script>"
_ONLY_HOSTILE = [{"effect": "allow", "resources": ["proj/hostile:env/*:flag/*"], "actions": ["*"]}]


def test_sign_out_ends_the_session(page: Page, relay: Relay) -> None:
    """After Sign out the cookie the browser had no longer works, in the page or anywhere."""
    sign_in(page, relay.tokens["reader"])
    [cookie] = [c for c in page.context.cookies() if c["name"] == "relay_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    jar = {"relay_console": cookie["value"]}
    assert httpx.get(f"{relay.url}/api/v2/status", cookies=jar).status_code == 200

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_label("Token")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("Signed out.")
    assert httpx.get(f"{relay.url}/api/v2/status", cookies=jar).status_code == 401
    assert httpx.get(f"{relay.url}/console/session", cookies=jar).status_code == 401
    page.reload()
    expect(page.get_by_label("Token")).to_be_visible()


def test_a_reader_sees_no_write_controls_and_the_api_refuses_its_writes(
    page: Page, relay: Relay, scenario: Scenario
) -> None:
    """A reader's subscription page has no Save, Retry, Replay or Send test, no Tokens link;
    a write made from the page anyway (with the CSRF header) is refused."""
    sign_in(page, relay.tokens["reader"])
    expect(page.get_by_role("link", name="Tokens")).to_be_hidden()
    sub_id = scenario.subscriptions["Payments team"]
    open_page(page, f"#/subscriptions/webhook/{sub_id}")
    expect(page.get_by_role("heading", name="Payments team")).to_be_visible()
    expect(page.get_by_role("table", name="Preview")).to_be_visible()
    for name in ("Save", "Retry", "Replay", "Send test"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    open_page(page, "#/deliveries")
    expect(page.get_by_role("table", name="Dead letters, newest first")).to_contain_text(
        "Payments team"
    )
    expect(page.get_by_role("button", name=re.compile("Retry"))).to_have_count(0)

    status = page.evaluate(
        """async (path) => {
            const session = await (await fetch("/console/session")).json();
            const answer = await fetch(path, {
                method: "PATCH",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": session.csrfToken},
                body: JSON.stringify([{op: "replace", path: "/name", value: "taken over"}]),
            });
            return answer.status;
        }""",
        f"{support.SUBSCRIPTIONS}/{sub_id}",
    )
    assert status == 403
    assert relay.get(f"{support.SUBSCRIPTIONS}/{sub_id}")["name"] == "Payments team"


def test_a_write_without_the_csrf_header_is_refused(page: Page, relay: Relay) -> None:
    """The session cookie alone does not make a write: another site could send it."""
    sign_in(page, relay.tokens["admin"])
    status = page.evaluate(
        """async () => (await fetch("/api/v2/tokens", {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({name: "forged", role: "admin"}),
        })).status"""
    )
    assert status == 403
    assert "forged" not in {t["name"] for t in relay.get("/api/v2/tokens")["items"]}


def test_markup_in_names_and_event_data_shows_as_text(
    page: Page, relay: Relay, problems: PageProblems
) -> None:
    """A subscription named with a script, an event whose fields hold an <img onerror> and
    a receiver answering with one show those characters literally on every page; nothing
    runs, no element is made."""
    receiver = relay.receiver()
    receiver.always(500, body=IMG.encode())
    sub_id = relay.subscribe(receiver.url, name=SCRIPT, statements=_ONLY_HOSTILE)
    [event_id] = relay.record(
        flag_event(
            "feature-created", IMG, "hostile", createdBy=IMG, environment=IMG, data={"x": IMG}
        )
    )
    support.eventually(
        lambda: relay.deliveries(sub_id, state="dead"), timeout=60, what="a dead letter"
    )
    sign_in(page, relay.tokens["admin"])

    seen = {
        "#/subscriptions": [SCRIPT, IMG],
        f"#/subscriptions/webhook/{sub_id}": [SCRIPT, IMG],
        "#/events?project=hostile": [IMG],
        f"#/events/{event_id}": [IMG, SCRIPT],
        "#/deliveries": [SCRIPT, IMG],
        "#/overview": [SCRIPT, IMG],
    }
    for route, texts in seen.items():
        open_page(page, route)
        for text in texts:
            expect(page.locator("#page")).to_contain_text(text)
        expect(page.locator("#page")).not_to_contain_text("Not found")
        assert page.locator("img, script:not([src])").count() == 0, route
        assert page.evaluate("window.__xss") is None, route
    assert problems.dialogs == []
