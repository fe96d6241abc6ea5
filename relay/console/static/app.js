// The console's shell: the session (sign in, sign out), the navigation and the hash router
// that draws one page at a time into #page.

import { api, ApiError, h, useSession } from "./lib.js";
import * as overview from "./overview.js";
import * as subscriptions from "./subscriptions.js";
import * as events from "./events.js";
import * as deliveries from "./deliveries.js";
import * as tokens from "./tokens.js";

// [pattern over the hash's path, page module, its function, title]
const ROUTES = [
  [/^\/overview$/, overview.render, "Overview"],
  [/^\/subscriptions$/, subscriptions.renderList, "Subscriptions"],
  [/^\/subscriptions\/([^/]+)\/([^/]+)$/, subscriptions.renderOne, "Subscription"],
  [/^\/events$/, events.renderSearch, "Events"],
  [/^\/events\/(\d+)$/, events.renderOne, "Event"],
  [/^\/deliveries$/, deliveries.renderDead, "Deliveries"],
  [/^\/tokens$/, tokens.render, "Tokens"],
];

const byId = (id) => document.getElementById(id);
let session = null;
let current = null; // the AbortController of the page shown: aborted when it is left

async function start() {
  byId("sign-in-form").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  try {
    signedIn(await api("GET", "/console/session"));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) throw error;
    signedOut("");
  }
}

async function signIn(submitted) {
  submitted.preventDefault();
  const input = byId("token");
  const problem = byId("sign-in-error");
  problem.textContent = "";
  try {
    signedIn(await api("POST", "/console/session", { token: input.value }));
    input.value = "";
  } catch (error) {
    problem.textContent = error instanceof ApiError ? error.message : String(error);
  }
}

async function signOut() {
  try {
    await api("DELETE", "/console/session");
  } catch {
    // a session that ended already is as signed out as this one will be
  }
  signedOut("Signed out.");
}

function signedIn(answer) {
  session = answer;
  useSession(answer.csrfToken, () => signedOut("Your session ended: sign in again."));
  byId("who-name").textContent = `${answer.name} (${answer.role})`;
  byId("sign-in").hidden = true;
  byId("nav").hidden = false;
  byId("who").hidden = false;
  byId("nav-tokens").hidden = answer.role !== "admin";
  if (!location.hash || location.hash === "#/") location.hash = "#/overview";
  else route();
}

function signedOut(message) {
  session = null;
  useSession("", () => {});
  leavePage();
  byId("page").replaceChildren();
  byId("nav").hidden = true;
  byId("who").hidden = true;
  byId("sign-in").hidden = false;
  byId("sign-in-error").textContent = message;
  byId("token").focus();
}

function leavePage() {
  current?.abort();
  current = null;
}

/** Draw the page the hash names (after the session is known). */
function route() {
  if (!session) return;
  leavePage();
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const page = byId("page");
  page.replaceChildren();
  for (const [pattern, render, title] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    current = new AbortController();
    document.title = `${title} · relay console`;
    markCurrent(path);
    const context = {
      session,
      signal: current.signal,
      params: match.slice(1).map(decodeURIComponent),
      query: new URLSearchParams(query),
    };
    render(page, context).catch((error) => failed(page, error, context.signal));
    return;
  }
  page.append(h("h1", { text: "Not found" }), h("p", { text: `No page at ${path}.` }));
}

function markCurrent(path) {
  for (const link of byId("nav").querySelectorAll("a")) {
    const here = path.startsWith(link.getAttribute("href").slice(1));
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function failed(page, error, signal) {
  if (signal.aborted || error.name === "AbortError") return;
  if (error instanceof ApiError && error.status === 401) return; // signed out already
  const text = error instanceof ApiError ? `${error.message} (${error.status})` : String(error);
  page.append(h("p", { class: "error", role: "alert", text }));
}

start();
