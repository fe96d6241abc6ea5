"""What writers and admins do in the console, in a real browser against a real worker:
retry a dead delivery, replay, send a test, preview and save a policy, manage tokens."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests import support
from tests.console.conftest import Relay, flag_event
from tests.console.steps import open_page, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Screenshot = Callable[[Page, str], Path]


def _only(project: str) -> list[dict[str, object]]:
    return [{"effect": "allow", "resources": [f"proj/{project}:env/*:flag/*"], "actions": ["*"]}]


def test_retry_revives_a_dead_delivery_and_shows_it_delivered(page: Page, relay: Relay) -> None:
    """A delivery that died against a 500 is retried from its subscription's page once the
    receiver is back; the page follows it to delivered."""
    # given a dead delivery
    receiver = relay.receiver()
    receiver.always(500, body=b"down for maintenance")
    sub_id = relay.subscribe(receiver.url, name="Retry me", statements=_only("retry"))
    [event_id] = relay.record(flag_event("feature-created", "retried", "retry"))
    [dead] = support.eventually(
        lambda: relay.deliveries(sub_id, state="dead"), timeout=60, what="a dead letter"
    )
    receiver.always(200)

    # when a writer presses Retry on it
    sign_in(page, relay.tokens["writer"])
    open_page(page, f"#/subscriptions/webhook/{sub_id}")
    deliveries = page.get_by_role("table", name="Recent deliveries, newest first")
    row = deliveries.get_by_role("row").filter(
        has=page.get_by_role("link", name=str(event_id), exact=True)
    )
    expect(row).to_contain_text("dead")
    row.get_by_role("button", name="Retry").click()

    # then it is delivered, on the page and in the relay
    expect(row.get_by_role("status")).to_have_text("Retried: delivered", timeout=60_000)
    revived = relay.get(f"{support.SUBSCRIPTIONS}/{sub_id}/deliveries/{dead['_id']}")
    assert revived["state"] == "delivered"
    assert receiver.received[-1].headers["webhook-id"] == dead["_id"]


def test_replay_shows_its_progress_until_done(page: Page, relay: Relay) -> None:
    """Replay re-sends the events of the range the policy includes; the progress counts
    the replayed deliveries as they finish and ends with done."""
    receiver = relay.receiver()
    ids = relay.record(
        *(flag_event("feature-created", f"replayed-{n}", "replay") for n in range(4))
    )
    sub_id = relay.subscribe(receiver.url, name="Replay me", statements=_only("replay"))

    sign_in(page, relay.tokens["writer"])
    open_page(page, f"#/subscriptions/webhook/{sub_id}")
    replay = page.get_by_role("form", name="Replay events")
    expect(replay.get_by_label("From")).not_to_have_value("")
    replay.get_by_role("button", name="Replay").click()

    expect(replay.get_by_role("status")).to_have_text(
        "Replay done: 4 events replayed, 4 delivered, 0 dead.", timeout=60_000
    )
    expect(replay.get_by_role("progressbar", name="Replay progress")).to_have_attribute(
        "value", "4"
    )
    sent = {json.loads(r.body)["featureName"] for r in receiver.wait_for(len(ids))}
    assert sent == {f"replayed-{n}" for n in range(4)}


def test_send_test_reports_the_receivers_answer(page: Page, relay: Relay) -> None:
    """Send test posts a test event and shows what the receiver answered."""
    receiver = relay.receiver()
    receiver.always(202, body=b"accepted")
    sub_id = relay.subscribe(receiver.url, name="Test me")

    sign_in(page, relay.tokens["writer"])
    open_page(page, f"#/subscriptions/webhook/{sub_id}")
    page.get_by_role("button", name="Send test").click()

    message = page.get_by_role("region", name="Deliveries").get_by_role("status")
    expect(message.filter(has_text="Test delivery")).to_contain_text(
        re.compile(r"Test delivery \S+: delivered \(202, \d+ ms\)")
    )
    assert len(receiver.wait_for(1)) == 1


def test_the_policy_preview_follows_the_statements_as_they_are_typed(
    page: Page, relay: Relay, screenshot: Screenshot
) -> None:
    """Each edit of the statements re-runs the preview over recent events; Save keeps them."""
    _, development = relay.record(
        flag_event("feature-environment-enabled", "preview-a", "preview", environment="production"),
        flag_event(
            "feature-environment-enabled", "preview-b", "preview", environment="development"
        ),
    )
    sub_id = relay.subscribe(support.CLOSED_URL, name="Preview me", on=False)
    sign_in(page, relay.tokens["writer"])
    open_page(page, f"#/subscriptions/webhook/{sub_id}")
    preview = page.get_by_role("table", name="Preview")
    summary = page.locator("#preview-summary")
    expect(summary).to_contain_text(re.compile(r"includes \d+ of the \d+ most recent"))

    editor = page.get_by_label("Policy statements (JSON)")
    editor.fill(json.dumps(_only("preview")))
    expect(summary).to_contain_text("includes 2 of")
    in_development = preview.get_by_role("row").filter(
        has=page.get_by_role("link", name=str(development), exact=True)
    )
    expect(in_development).to_contain_text("included")
    editor.fill('[{"effect": "allow", "resources": ["proj/preview:env/production:flag/*"], ')
    expect(page.get_by_role("alert")).to_contain_text("Not valid JSON")
    statements = [
        {"effect": "allow", "resources": ["proj/preview:env/production:flag/*"], "actions": ["*"]}
    ]
    editor.fill(json.dumps(statements, indent=2))
    expect(summary).to_contain_text("includes 1 of")
    expect(in_development).to_contain_text("excluded")
    expect(page.get_by_role("alert")).to_have_text("")
    page.get_by_role("heading", name="Policy").evaluate("heading => heading.scrollIntoView()")
    screenshot(page, "policy-preview")

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Policy saved.")).to_be_visible()
    assert relay.get(f"{support.SUBSCRIPTIONS}/{sub_id}")["statements"] == statements


def test_an_admin_creates_and_revokes_a_token(
    page: Page, relay: Relay, screenshot: Screenshot
) -> None:
    """The Tokens page creates a token with a role, shows its secret once, and revokes it."""
    sign_in(page, relay.tokens["admin"])
    page.get_by_role("link", name="Tokens").click()
    form = page.get_by_role("form", name="Create a token")
    form.get_by_label("Name").fill("ci deployer")
    form.get_by_label("Role").select_option("writer")
    form.get_by_role("button", name="Create token").click()

    secret = page.locator("code.secret")
    expect(secret).to_have_text(re.compile(r"^rly_"))
    created = secret.inner_text()
    row = page.get_by_role("row").filter(has_text="ci deployer")
    expect(row).to_contain_text("writer")
    screenshot(page, "tokens")
    assert relay.api.get("/api/v2/status", headers={"Authorization": created}).status_code == 200

    row.get_by_role("button", name="Revoke ci deployer").click()
    expect(page.get_by_text("Token ci deployer revoked.")).to_be_visible()
    expect(row).to_have_count(0)
    assert relay.api.get("/api/v2/status", headers={"Authorization": created}).status_code == 401
