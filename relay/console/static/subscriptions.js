// Subscriptions: the table of all of them, and one subscription's page (config, policy
// editor with a live preview, deliveries with Retry, Replay and Send test).

import {
  allSubscriptions,
  api,
  canWrite,
  debounce,
  field,
  formatTime,
  h,
  json,
  percent,
  showError,
  statusLine,
  subscriptionHref,
  table,
  when,
} from "./lib.js";
import { deliveriesSection } from "./deliveries.js";

const PREVIEW_DELAY_MS = 400;
const PREVIEW_EVENTS = 100;

/** The table of every subscription. */
export async function renderList(page, { signal }) {
  page.append(h("h1", { text: "Subscriptions" }));
  const subs = await allSubscriptions(signal);
  const rows = subs.map((sub) => [
    h("a", { href: subscriptionHref(sub.kind, sub._id), text: sub.name }),
    sub.kind,
    sub.on ? "on" : "off",
    percent(sub._status.successCount, sub._status.successCount + sub._status.errorCount),
    lastError(sub._status),
  ]);
  const headers = ["Name", "Integration", "On", "Success rate", "Last error"];
  page.append(table(`${subs.length} subscriptions`, headers, rows, "No subscriptions yet."));
}

function lastError(status) {
  const [error] = status.errors ?? [];
  if (!error) return "";
  const code = error.statusCode ?? "no answer";
  const body = error.responseBody ? `: ${error.responseBody.slice(0, 120)}` : "";
  return `${formatTime(error.timestamp)} ${code}${body}`;
}

/** One subscription's page. */
export async function renderOne(page, { session, signal, params }) {
  const [kind, id] = params;
  const path = `/api/v2/integrations/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`;
  const sub = await api("GET", path, undefined, signal);
  page.append(
    h("p", {}, h("a", { href: "#/subscriptions", text: "All subscriptions" })),
    h("h1", { text: sub.name }),
    configSection(sub),
    policySection(sub, path, session, signal),
    deliveriesSection(sub, path, session, signal),
  );
}

function configSection(sub) {
  const status = sub._status;
  const facts = [
    ["Id", sub._id],
    ["Integration", sub.kind],
    ["On", sub.on ? "on" : "off"],
    ["Tags", sub.tags.join(", ") || "none"],
    ["Delivered", String(status.successCount)],
    ["Failed attempts", String(status.errorCount)],
    ["Last success", formatTime(status.lastSuccess) || "never"],
    ["Last error", lastError(status) || "none"],
  ];
  if (status.disabledReason) facts.push(["Turned off because", status.disabledReason]);
  if (status.localListener) {
    facts.push(["relay listen", `${status.localListener}: loopback allowed for this subscription only`]);
  }
  const list = h("dl", { class: "facts" }, facts.map(([term, text]) => [h("dt", { text: term }), h("dd", { text })]));
  return h(
    "section",
    { "aria-labelledby": "config-heading" },
    h("h2", { id: "config-heading", text: "Configuration" }),
    h(
      "div",
      { class: "columns" },
      list,
      h(
        "div",
        {},
        h("h3", { text: "Config (secrets masked)" }),
        h("pre", { class: "json", text: json(sub.config) }),
        h("h3", { text: "Delivery settings" }),
        h("pre", { class: "json", text: json(sub.delivery) }),
      ),
    ),
  );
}

function policySection(sub, path, session, signal) {
  const [editorField, editor] = field(
    "Policy statements (JSON)",
    { value: json(sub.statements), rows: 16, spellcheck: "false", class: "code" },
    "textarea",
  );
  const problem = h("p", { class: "error", role: "alert" });
  const summary = h("p", { id: "preview-summary", class: "status", role: "status" });
  const results = h("div");
  const preview = debounce(() => runPreview(editor.value, problem, summary, results, signal), PREVIEW_DELAY_MS);
  editor.addEventListener("input", preview);
  const editing = h("div", {}, editorField, problem);
  if (canWrite(session)) editing.append(saveControl(path, editor, problem));
  const previewing = h(
    "div",
    {},
    h("h3", { text: `Preview over the ${PREVIEW_EVENTS} most recent events` }),
    summary,
    h("div", { class: "scroll" }, results),
  );
  runPreview(editor.value, problem, summary, results, signal);
  return h(
    "section",
    { "aria-labelledby": "policy-heading" },
    h("h2", { id: "policy-heading", text: "Policy" }),
    h("p", { class: "muted", text: "No statements: every flag audit event is included. A deny that matches wins over any allow." }),
    h("div", { class: "columns wide-right" }, editing, previewing),
  );
}

function saveControl(path, editor, problem) {
  const saved = statusLine();
  const save = async () => {
    saved.textContent = "";
    const statements = parseStatements(editor.value, problem);
    if (!statements) return;
    try {
      await api("PATCH", path, [{ op: "replace", path: "/statements", value: statements }]);
      saved.textContent = "Policy saved.";
    } catch (error) {
      showError(problem, error);
    }
  };
  return h("div", { class: "actions" }, h("button", { type: "button", on: { click: save }, text: "Save" }), saved);
}

function parseStatements(text, problem) {
  problem.textContent = "";
  try {
    const statements = JSON.parse(text);
    if (Array.isArray(statements)) return statements;
    problem.textContent = "The policy is a JSON array of statements.";
  } catch (error) {
    problem.textContent = `Not valid JSON: ${error.message}`;
  }
  return null;
}

let previewGeneration = 0;

async function runPreview(text, problem, summary, results, signal) {
  const statements = parseStatements(text, problem);
  if (!statements) return;
  const generation = ++previewGeneration; // an older answer arriving late is dropped
  summary.textContent = "Previewing…";
  try {
    const body = { statements, limit: PREVIEW_EVENTS };
    const answer = await api("POST", "/api/v2/policy-preview", body, signal);
    if (generation !== previewGeneration) return;
    summary.textContent = `This policy includes ${answer.included} of the ${answer.items.length} most recent events.`;
    results.replaceChildren(previewTable(answer.items));
  } catch (error) {
    if (generation !== previewGeneration || signal.aborted) return;
    summary.textContent = "";
    showError(problem, error);
  }
}

function previewTable(items) {
  const rows = items.map((item) => [
    h("a", { href: `#/events/${item.eventId}`, text: String(item.eventId) }),
    item.type,
    when(item.createdAt),
    h("span", { class: item.included ? "yes" : "no", text: item.included ? "included" : "excluded" }),
    item.reason,
  ]);
  const headers = ["Event", "Type", "Created", "Decision", "Reason"];
  return table("Preview", headers, rows, "No events recorded yet.");
}
