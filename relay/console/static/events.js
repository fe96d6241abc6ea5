// Events: Unleash's event search with filters and paging, and one event's page: every
// subscription, whether it includes the event, and why.

import {
  api,
  field,
  formatTime,
  h,
  json,
  subscriptionHref,
  table,
  when,
  withQuery,
} from "./lib.js";

const PAGE = 50;
const EXPLANATIONS_PAGE = 1000; // the most the explanations route answers at once
// [query parameter, label, input type]; the API takes `IS:value` for all but `query`
const FILTERS = [
  ["query", "Query", "search"],
  ["type", "Type", "text"],
  ["project", "Project", "text"],
  ["feature", "Feature", "text"],
  ["createdBy", "Created by", "text"],
  ["environment", "Environment", "text"],
  ["from", "From date", "date"],
  ["to", "To date", "date"],
];
const OPERATOR = /^(IS|IS_NOT|IS_ANY_OF|IS_NONE_OF|IS_BEFORE|IS_ON_OR_AFTER):/;

/** The search form (its values in the hash's query) and a page of results. */
export async function renderSearch(page, { signal, query }) {
  const form = searchForm(query);
  page.append(h("h1", { text: "Events" }), form);
  const offset = Math.max(0, Number(query.get("offset")) || 0);
  const params = { offset, limit: PAGE };
  for (const [name] of FILTERS) {
    const value = (query.get(name) || "").trim();
    if (value) params[name] = name === "query" || OPERATOR.test(value) ? value : `IS:${value}`;
  }
  const answer = await api("GET", withQuery("/api/admin/search/events", params), undefined, signal);
  page.append(results(answer.events, answer.total, offset));
  if (answer.complete === false) {
    const back = formatTime(answer.searchedBackTo);
    page.append(h("p", { class: "muted", role: "note", text: `Searched back to ${back}: narrow the search (dates, project, feature) to look further.` }));
  }
  page.append(pager(query, offset, answer.total));
}

function searchForm(query) {
  const fields = FILTERS.map(([name, label, type]) => field(label, { name, type, value: query.get(name) || "", id: `filter-${name}` })[0]);
  const search = (submitted) => {
    submitted.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(submitted.target)) if (String(value).trim()) chosen.set(name, String(value).trim());
    const text = chosen.toString();
    location.hash = text ? `#/events?${text}` : "#/events";
  };
  return h(
    "form",
    { class: "filters", role: "search", "aria-label": "Event search", on: { submit: search } },
    fields,
    h("button", { type: "submit", text: "Search" }),
  );
}

function results(events, total, offset) {
  const rows = events.map((e) => [
    h("a", { href: `#/events/${e.id}`, text: String(e.id) }),
    when(e.createdAt),
    e.type,
    e.featureName ?? "",
    e.project ?? "",
    e.environment ?? "",
    e.createdBy,
    e.label ?? "",
  ]);
  const headers = ["Id", "Created", "Type", "Feature", "Project", "Environment", "Created by", "Label"];
  const shown = events.length ? `${offset + 1} to ${offset + events.length} of ${total}` : `0 of ${total}`;
  return table(`Events, newest first: ${shown}`, headers, rows, "No event matches.");
}

function pager(query, offset, total) {
  const link = (to, text) => {
    const next = new URLSearchParams(query);
    next.set("offset", String(to));
    return h("a", { href: `#/events?${next}`, text });
  };
  return h(
    "nav",
    { class: "pager", "aria-label": "Result pages" },
    offset > 0 ? link(Math.max(0, offset - PAGE), "Newer events") : "",
    offset + PAGE < total ? link(offset + PAGE, "Older events") : "",
  );
}

/** One event and, for every subscription, whether it includes the event and why. */
export async function renderOne(page, { signal, params }) {
  const [id] = params;
  const found = await api("GET", withQuery("/api/admin/search/events", { id: `IS:${id}`, limit: 1 }), undefined, signal);
  page.append(h("p", {}, h("a", { href: "#/events", text: "Event search" })));
  const event = found.events[0];
  if (!event) {
    page.append(h("h1", { text: `Event ${id}` }), h("p", { text: "No such event." }));
    return;
  }
  page.append(h("h1", { text: `Event ${id}: ${event.type}` }), eventFacts(event));
  const explained = await explanations(id, signal);
  page.append(explanationSection(explained));
}

const MARKDOWN = /\*\*(.+?)\*\*|\[([^\]]*)\]\([^)]*\)/g;

/**
 * Unleash's markdown summary as nodes: **bold** in <strong>, a link as its text only (the
 * event's own fields end up in it: no URL of theirs becomes a link).
 */
function markdownText(markdown) {
  const nodes = [];
  let last = 0;
  for (const match of markdown.matchAll(MARKDOWN)) {
    nodes.push(markdown.slice(last, match.index));
    nodes.push(match[1] !== undefined ? h("strong", {}, markdownText(match[1])) : match[2]);
    last = match.index + match[0].length;
  }
  nodes.push(markdown.slice(last));
  return nodes.filter((node) => node !== "");
}

function eventFacts(event) {
  const facts = [
    ["Created", formatTime(event.createdAt)],
    ["Created by", event.createdBy],
    ["Feature", event.featureName ?? ""],
    ["Project", event.project ?? ""],
    ["Environment", event.environment ?? ""],
  ];
  const list = h(
    "dl",
    { class: "facts" },
    facts.map(([term, text]) => [h("dt", { text: term }), h("dd", { text })]),
    h("dt", { text: "Summary" }),
    h("dd", {}, markdownText(event.summary ?? "")),
  );
  return h(
    "section",
    { "aria-labelledby": "event-heading" },
    h("h2", { id: "event-heading", text: "Event" }),
    list,
    h("h3", { text: "Data" }),
    h("pre", { class: "json", text: json(event.data ?? null) }),
    event.preData ? [h("h3", { text: "Data before" }), h("pre", { class: "json", text: json(event.preData) })] : [],
  );
}

/**
 * `{items: [{subscription: {_id, kind, name, on}, explanation}], included}` for every
 * subscription: GET /api/v2/events/{id}/explanations page by page.
 */
async function explanations(id, signal) {
  const items = [];
  for (let offset = 0; ; offset += EXPLANATIONS_PAGE) {
    const path = withQuery(`/api/v2/events/${id}/explanations`, { limit: EXPLANATIONS_PAGE, offset });
    const page = await api("GET", path, undefined, signal);
    items.push(...page.items);
    if (items.length >= page.totalCount || page.items.length === 0) return { items, included: page.included };
  }
}

function explanationSection({ items: explained, included }) {
  const [first] = explained;
  const mapped = first
    ? `This event is the resource ${first.explanation.resource} with the actions ${first.explanation.actions.join(", ")}.`
    : "";
  const rows = explained.map(({ subscription: sub, explanation: e }) => [
    h("a", { href: subscriptionHref(sub.kind, sub._id), text: sub.name }),
    sub.kind,
    e.subscriptionOn === false ? "off" : "on",
    h("span", { class: e.included ? "yes" : "no", text: e.included ? "included" : "excluded" }),
    e.reason,
    statementsCell(sub, e),
  ]);
  const headers = ["Subscription", "Integration", "On", "Decision", "Reason", "Statements"];
  return h(
    "section",
    { "aria-labelledby": "explain-heading" },
    h("h2", { id: "explain-heading", text: "Subscriptions" }),
    h("p", { text: `${included} of ${explained.length} subscriptions include this event. ${mapped}` }),
    table("Which subscriptions include this event, and why", headers, rows, "No subscriptions."),
  );
}

function statementsCell(sub, explanation) {
  const statements = explanation.statements ?? [];
  if (!statements.length) return "none";
  const list = (values) => (values ? values.join(", ") : "");
  const yes = (flag) => (flag ? "yes" : "no");
  const rows = statements.map((s) => [
    String(s.index),
    s.effect,
    s.resources ? list(s.resources) : s.notResources ? `not ${list(s.notResources)}` : "",
    s.actions ? list(s.actions) : s.notActions ? `not ${list(s.notActions)}` : "",
    yes(s.resourceMatched),
    yes(s.actionMatched),
    s.index === explanation.decidedBy ? "decided" : yes(s.matched),
  ]);
  const headers = ["#", "Effect", "Resources", "Actions", "Resource matched", "Action matched", "Matched"];
  return h(
    "details",
    {},
    h("summary", { text: `${statements.length} statement${statements.length === 1 ? "" : "s"}` }),
    table(`Statements of ${sub.name}`, headers, rows),
  );
}
