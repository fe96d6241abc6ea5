"""What the console's tests do in the browser: sign in, open a page, check accessibility."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

# ARIA roles of controls: each must have an accessible name
CONTROL_ROLES = ("button", "link", "textbox", "searchbox", "combobox", "spinbutton", "checkbox")
_UNNAMED = re.compile(rf"^\s*- ({'|'.join(CONTROL_ROLES)})(?: \[[^\]]*\])*:?$")

# the same from the DOM's side: labels, aria-label(ledby), a button's or link's text
_DOM_CHECK = """() => {
  const problems = [];
  const text = (el) => (el ? el.textContent : "") || "";
  const nameOf = (el) => {
    const labelledBy = (el.getAttribute("aria-labelledby") || "").split(" ")
      .map((id) => text(document.getElementById(id))).join(" ");
    const labels = el.labels ? [...el.labels].map(text).join(" ") : "";
    const own = ["BUTTON", "A", "SUMMARY"].includes(el.tagName) ? text(el) : "";
    return [el.getAttribute("aria-label") || "", labelledBy, labels, own, el.title].join("").trim();
  };
  for (const el of document.querySelectorAll("button, input, select, textarea, a[href], summary")) {
    if (!nameOf(el)) problems.push("no accessible name: " + el.outerHTML.slice(0, 160));
  }
  for (const table of document.querySelectorAll("table")) {
    if (!table.querySelector("thead th")) {
      problems.push("table without header cells: " + text(table).slice(0, 80));
    }
  }
  return problems;
}"""


_GO_TO = """route => {
  document.getElementById("page").replaceChildren();
  if (location.hash === route) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = route;
}"""


def sign_in(page: Page, token: str) -> None:
    """Sign in on the console's page with `token`; returns once the navigation shows."""
    page.goto("/console")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def open_page(page: Page, route: str) -> None:
    """Go to a console route (`#/events`, ...) in the signed-in page; what the page showed
    is cleared first, so that what a test then waits for is the new route's."""
    page.evaluate(_GO_TO, route)


def accessibility_problems(page: Page) -> list[str]:
    """Controls without an accessible name and tables without header cells, as the
    accessibility tree (Playwright's) and the DOM both see them."""
    snapshot = page.locator("body").aria_snapshot()
    problems = [
        f"unnamed in the accessibility tree: {line.strip()}"
        for line in snapshot.splitlines()
        if _UNNAMED.match(line)
    ]
    found: list[str] = page.evaluate(_DOM_CHECK)
    return problems + found
