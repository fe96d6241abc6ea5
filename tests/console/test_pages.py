"""The console in a real browser: sign-in and each page showing the relay's data."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from relay.cli.embedded_redis import free_port
from relay.cli.listen import take_subscription
from relay.destinations import listener_origin
from relay.store import listeners, subscriptions
from relay.store.client import connect
from tests.console.conftest import Relay, Scenario, flag_event
from tests.console.steps import accessibility_problems, open_page, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Screenshot = Callable[[Page, str], Path]


def test_a_wrong_token_is_refused_and_the_page_says_so(
    page: Page, relay: Relay, screenshot: Screenshot
) -> None:
    """A token the relay does not know signs nobody in: the form stays, with the reason."""
    page.goto("/console")
    page.get_by_label("Token").fill("not-a-relay-token")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("token")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    screenshot(page, "sign-in")


def test_signing_in_shows_the_navigation(page: Page, relay: Relay) -> None:
    """A good token opens the console: the four pages' links, Tokens for an admin, Sign out."""
    sign_in(page, relay.tokens["admin"])

    nav = page.get_by_role("navigation", name="Main")
    for name in ("Overview", "Subscriptions", "Events", "Deliveries", "Tokens"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("bootstrap (admin)")).to_be_visible()


def test_the_overview_shows_the_status_and_refreshes_by_itself(
    page: Page, relay: Relay, scenario: Scenario, screenshot: Screenshot
) -> None:
    """Dead letters, failing and paused subscriptions, queues and workers, updated every 5 s
    with a per-minute rate once two readings exist."""
    sign_in(page, relay.tokens["reader"])
    dead = page.get_by_role("region", name="Dead letters")
    expect(dead.locator(".value")).to_have_text("3")
    attention = page.get_by_role("table", name="Subscriptions needing attention")
    expect(attention).to_contain_text("Payments team")
    expect(attention).to_contain_text("Paused staging hook")
    queues = page.get_by_role("table", name="Queue depths")
    expect(queues.get_by_role("row", name=re.compile(r"^dead 3 "))).to_be_visible()
    expect(page.get_by_role("table", name="Workers")).to_contain_text("alive")
    first = page.get_by_role("status").first.inner_text()

    # a second reading comes by itself, and with it a rate
    expect(page.get_by_role("status").first).not_to_have_text(first, timeout=15_000)
    rate = page.get_by_role("region", name="Deliveries per minute").locator(".value")
    expect(rate).to_have_text(re.compile(r"^\d+\.\d$"))
    screenshot(page, "overview")


def test_the_subscriptions_table_lists_each_with_its_health(
    page: Page, relay: Relay, scenario: Scenario, screenshot: Screenshot
) -> None:
    """Name, integration, on/off, success rate and last error, one row per subscription."""
    sign_in(page, relay.tokens["writer"])
    open_page(page, "#/subscriptions")

    table = page.get_by_role("table")
    mirror = table.get_by_role("row", name=re.compile("^Audit mirror"))
    expect(mirror).to_contain_text("webhook")
    expect(mirror).to_contain_text("100.0 %")
    payments = table.get_by_role("row", name=re.compile("^Payments team"))
    expect(payments).to_contain_text("0.0 %")
    expect(payments).to_contain_text("500: upstream unavailable")
    expect(table.get_by_role("row", name=re.compile("^Paused staging hook"))).to_contain_text("off")
    screenshot(page, "subscriptions")


def test_a_subscription_page_shows_its_config_masked_and_its_deliveries(
    page: Page, relay: Relay, scenario: Scenario, screenshot: Screenshot
) -> None:
    """The config with the secret masked, the policy, each delivery with its attempts."""
    sign_in(page, relay.tokens["writer"])
    page.get_by_role("link", name="Subscriptions").click()
    page.get_by_role("link", name="Production changes").click()

    expect(page.get_by_role("heading", name="Production changes")).to_be_visible()
    config = page.get_by_role("region", name="Configuration")
    expect(config).to_contain_text(scenario.ok.url)
    expect(config).not_to_contain_text("production-signing-secret")
    expect(config).to_contain_text('"secret": "****')
    expect(page.get_by_label("Policy statements (JSON)")).to_have_value(
        re.compile(re.escape('"proj/*:env/production:flag/*"'))
    )
    # its deliveries: the production events, not the development one
    deliveries = page.get_by_role("table", name="Recent deliveries, newest first")

    def row_of(event: str) -> Locator:
        link = page.get_by_role("link", name=str(scenario.events[event]), exact=True)
        return deliveries.locator(":scope > tbody > tr").filter(has=link)

    expect(row_of("strategy")).to_contain_text("delivered")
    expect(row_of("disabled")).to_have_count(0)
    enabled = row_of("enabled")
    expect(enabled).to_contain_text("delivered")
    enabled.get_by_text(re.compile(r"^1 \(last: 200")).click()
    attempts = enabled.get_by_role("table")
    expect(attempts).to_contain_text("200")
    expect(attempts).to_contain_text(" ms")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "subscription")


def test_a_relay_listen_subscription_page_says_loopback_is_allowed_for_it_alone(
    page: Page, relay: Relay, scenario: Scenario
) -> None:
    """The subscription `relay listen` made for itself shows its mark (`_status.localListener`)."""
    client = connect(relay.settings.redis_url or "")
    origin = listener_origin("127.0.0.1", free_port())
    listening = take_subscription(client, relay.settings, origin=origin, policies=[])
    try:
        sign_in(page, relay.tokens["reader"])
        page.get_by_role("link", name="Subscriptions").click()
        page.get_by_role("link", name=listening.record.name).click()
        config = page.get_by_role("region", name="Configuration")
        expect(config).to_contain_text(f"{origin}: loopback allowed for this subscription only")
    finally:
        subscriptions.delete_subscription(client, sub_id=listening.record.id)
        listeners.forget(client, sub_id=listening.record.id)
        client.close()


def test_the_event_search_filters_and_pages(
    page: Page, relay: Relay, scenario: Scenario, screenshot: Screenshot
) -> None:
    """Each filter narrows the results (newest first); 55 events make two pages of 50."""
    relay.record(
        *(
            flag_event("feature-environment-disabled", f"bulk-{n}", "paging", environment="test")
            for n in range(55)
        )
    )
    sign_in(page, relay.tokens["reader"])
    page.get_by_role("link", name="Events").click()

    search = page.get_by_role("search", name="Event search")
    search.get_by_label("Type").fill("feature-environment-enabled")
    search.get_by_role("button", name="Search").click()
    results = page.get_by_role("table")
    expect(results.locator(":scope > tbody > tr")).to_have_count(1)
    expect(results).to_contain_text("checkout-v2")
    search.get_by_label("Type").fill("")
    search.get_by_label("Project").fill("payments")
    search.get_by_role("button", name="Search").click()
    expect(results).to_contain_text("1 to 3 of 3")
    expect(results.locator(":scope > tbody > tr").first).to_contain_text(
        str(scenario.events["tagged"])
    )
    screenshot(page, "events")

    search.get_by_label("Project").fill("paging")
    search.get_by_role("button", name="Search").click()
    expect(results).to_contain_text("1 to 50 of 55")
    page.get_by_role("link", name="Older events").click()
    expect(results).to_contain_text("51 to 55 of 55")
    expect(results.locator(":scope > tbody > tr").last).to_contain_text("bulk-0")


def test_an_event_page_says_which_subscriptions_include_it_and_why(
    page: Page, relay: Relay, scenario: Scenario, screenshot: Screenshot
) -> None:
    """Every subscription with its decision, the reason and each statement's clauses."""
    sign_in(page, relay.tokens["reader"])
    open_page(page, f"#/events/{scenario.events['disabled']}")

    expect(
        page.get_by_role("heading", name=re.compile("feature-environment-disabled"))
    ).to_be_visible()
    table = page.get_by_role("table", name="Which subscriptions include this event, and why")
    expect(table.get_by_role("row", name=re.compile("^Audit mirror"))).to_contain_text("included")
    production = table.get_by_role("row", name=re.compile("^Production changes"))
    expect(production).to_contain_text("excluded")
    production.get_by_text("1 statement", exact=True).click()
    clauses = production.get_by_role("table", name="Statements of Production changes")
    expect(clauses.locator(":scope > tbody > tr")).to_contain_text("proj/*:env/production:flag/*")
    expect(table.get_by_role("row", name=re.compile("^Paused staging hook"))).to_contain_text("off")
    page.get_by_role("heading", name="Subscriptions").evaluate(
        "heading => heading.scrollIntoView()"
    )
    screenshot(page, "event")


def test_the_deliveries_page_lists_dead_letters_with_retry(
    page: Page, relay: Relay, scenario: Scenario, screenshot: Screenshot
) -> None:
    """Dead letters across subscriptions, each with its reason and a Retry for writers."""
    sign_in(page, relay.tokens["writer"])
    page.get_by_role("link", name="Deliveries").click()

    table = page.get_by_role("table", name="Dead letters, newest first")
    rows = table.locator(":scope > tbody > tr").filter(has_text="Payments team")
    expect(rows).to_have_count(3)
    expect(rows.first.get_by_role("button", name=re.compile("^Retry"))).to_be_visible()
    screenshot(page, "deliveries")


def test_every_control_has_a_name_and_every_table_header_cells(
    page: Page, relay: Relay, scenario: Scenario
) -> None:
    """Each page, as an admin sees it (the most controls), passes the accessibility checks."""
    page.goto("/console")
    assert accessibility_problems(page) == []
    sign_in(page, relay.tokens["admin"])
    mirror = f"#/subscriptions/webhook/{scenario.subscriptions['Audit mirror']}"
    pages = {
        "#/overview": "Workers",
        "#/subscriptions": "Paused staging hook",
        mirror: "Recent deliveries",
        "#/events?project=payments": "checkout-v2",
        f"#/events/{scenario.events['enabled']}": "Which subscriptions",
        "#/deliveries": "Payments team",
        "#/tokens": "console reader",
    }
    for route, shown in pages.items():
        open_page(page, route)
        expect(page.locator("#page")).to_contain_text(shown)
        for summary in page.locator("summary").all():  # open disclosures show their tables
            summary.click()
        assert accessibility_problems(page) == [], route
