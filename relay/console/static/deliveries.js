// Deliveries: a subscription's deliveries and attempts (with Retry, Replay and Send test),
// and the dead letters of every subscription.

import {
  api,
  ApiError,
  canWrite,
  field,
  h,
  pause,
  showError,
  statusLine,
  subscriptionHref,
  table,
  when,
  withQuery,
} from "./lib.js";

const FINISHED = new Set(["delivered", "dead", "gone", "skipped"]);
const POLL_MS = 1000;
const POLL_AT_ONCE = 10; // deliveries looked up one by one per round of a replay's progress
const EXCERPT = 120; // characters of a receiver's answer shown in a table

/** A subscription's deliveries section: the table and, for writers, the actions. */
export function deliveriesSection(sub, path, session, signal) {
  const holder = h("div");
  const message = statusLine();
  const refresh = () => showDeliveries(holder, path, session, signal).catch((e) => showError(message, e));
  const section = h(
    "section",
    { "aria-labelledby": "deliveries-heading" },
    h("h2", { id: "deliveries-heading", text: "Deliveries" }),
  );
  if (canWrite(session)) {
    section.append(
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", on: { click: () => sendTest(path, message, refresh, signal) }, text: "Send test" }),
        h("button", { type: "button", on: { click: refresh }, text: "Refresh deliveries" }),
      ),
      replayForm(path, refresh, signal),
    );
  }
  section.append(message, holder);
  refresh();
  return section;
}

async function showDeliveries(holder, path, session, signal) {
  let answer;
  try {
    answer = await api("GET", withQuery(`${path}/deliveries`, { limit: 50 }), undefined, signal);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 403)) throw error;
    holder.replaceChildren(h("p", { class: "muted", text: "Deliveries and their attempts are shown to writers and admins." }));
    return;
  }
  const retry = canWrite(session) ? (delivery) => retryButton(path, delivery, signal) : null;
  const rows = answer.items.map((d) => [
    h("code", { text: d._id }),
    d.kind,
    d.eventId === undefined ? "" : h("a", { href: `#/events/${d.eventId}`, text: String(d.eventId) }),
    h("span", { class: `state ${d.state}`, text: d.state }),
    attemptsCell(d),
    when(d.updatedAt),
    retry && d.state === "dead" ? retry(d) : "",
  ]);
  const headers = ["Delivery", "Kind", "Event", "State", "Attempts", "Updated", "Action"];
  holder.replaceChildren(table("Recent deliveries, newest first", headers, rows, "No deliveries yet."));
}

/** The attempts of a delivery: the last one in short, all of them in a disclosure. */
function attemptsCell(delivery) {
  const attempts = delivery.attempts;
  if (!attempts.length) return `${delivery.attemptCount} attempts`;
  const rows = attempts.map((a) => [
    when(a.at),
    a.statusCode === null || a.statusCode === undefined ? "no answer" : String(a.statusCode),
    `${a.durationMs} ms`,
    a.outcome,
    excerpt(a.error || a.responseBody),
  ]);
  const headers = ["At", "Status", "Duration", "Outcome", "Response"];
  const last = attempts[attempts.length - 1];
  const summary = `${attempts.length} (last: ${last.statusCode ?? "no answer"}, ${last.durationMs} ms)`;
  return h(
    "details",
    {},
    h("summary", { text: summary }),
    table(`Attempts of delivery ${delivery._id}`, headers, rows),
  );
}

function excerpt(text) {
  const flat = (text || "").replace(/\s+/g, " ").trim();
  return flat.length > EXCERPT ? `${flat.slice(0, EXCERPT)}…` : flat;
}

function retryButton(path, delivery, signal) {
  const button = h("button", { type: "button", "aria-label": `Retry delivery ${delivery._id}`, text: "Retry" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    const cell = button.parentElement;
    try {
      const url = `${path}/deliveries/${encodeURIComponent(delivery._id)}/retry`;
      await api("POST", url, undefined, signal);
      cell.replaceChildren(h("span", { role: "status", text: "Retrying…" }));
      const final = await settled(`${path}/deliveries/${encodeURIComponent(delivery._id)}`, signal);
      cell.replaceChildren(h("span", { role: "status", text: `Retried: ${final.state}` }));
    } catch (error) {
      const problem = h("span");
      showError(problem, error);
      cell.replaceChildren(problem);
    }
  });
  return button;
}

/** The delivery at `url` once it is finished (or as it is after a minute). */
async function settled(url, signal) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const delivery = await api("GET", url, undefined, signal);
    if (FINISHED.has(delivery.state) || Date.now() > deadline || signal.aborted) return delivery;
    await pause(POLL_MS, signal);
  }
}

async function sendTest(path, message, refresh, signal) {
  message.className = "status";
  message.textContent = "Sending a test event…";
  try {
    let delivery = await api("POST", `${path}/test`, undefined, signal);
    if (delivery.state === "pending") delivery = await settled(`${path}/deliveries/${delivery._id}`, signal);
    const last = delivery.attempts[delivery.attempts.length - 1];
    const how = last ? ` (${last.statusCode ?? last.error ?? "no answer"}, ${last.durationMs} ms)` : "";
    message.textContent = `Test delivery ${delivery._id}: ${delivery.state}${how}.`;
    refresh();
  } catch (error) {
    showError(message, error);
  }
}

function localInput(ms) {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 16);
}

function replayForm(path, refresh, signal) {
  const now = Date.now();
  const [fromField, from] = field("From", { type: "datetime-local", value: localInput(now - 86_400_000) });
  const [toField, to] = field("To", { type: "datetime-local", value: localInput(now) });
  const progress = h("progress", { "aria-label": "Replay progress", max: 1, value: 0, hidden: true });
  const status = statusLine();
  const start = async (submitted) => {
    submitted.preventDefault();
    status.className = "status";
    try {
      // datetime-local counts whole minutes: `to` takes in the whole of its minute
      const body = { from: new Date(from.value).getTime(), to: new Date(to.value).getTime() + 59_999 };
      const answer = await api("POST", `${path}/replay`, body, signal);
      await followReplay(path, answer.ids, progress, status, signal);
      refresh();
    } catch (error) {
      showError(status, error);
    }
  };
  return h(
    "form",
    { class: "inline", "aria-label": "Replay events", on: { submit: start } },
    fromField,
    toField,
    h("button", { type: "submit", text: "Replay" }),
    progress,
    status,
  );
}

/** Poll the replayed deliveries until each is finished, showing how many are. */
async function followReplay(path, ids, progress, status, signal) {
  const states = new Map(ids.map((id) => [id, "pending"]));
  progress.hidden = ids.length === 0;
  progress.max = Math.max(ids.length, 1);
  for (;;) {
    const open = ids.filter((id) => !FINISHED.has(states.get(id)));
    const counts = countStates(states);
    progress.value = ids.length - open.length;
    if (!open.length) {
      status.textContent = `Replay done: ${ids.length} events replayed, ${counts.delivered ?? 0} delivered, ${counts.dead ?? 0} dead.`;
      return;
    }
    status.textContent = `Replaying: ${ids.length - open.length} of ${ids.length} finished.`;
    await pause(POLL_MS, signal);
    if (signal.aborted) return;
    const looked = open.slice(0, POLL_AT_ONCE).map((id) => api("GET", `${path}/deliveries/${id}`, undefined, signal));
    for (const delivery of await Promise.all(looked)) states.set(delivery._id, delivery.state);
  }
}

function countStates(states) {
  const counts = {};
  for (const state of states.values()) counts[state] = (counts[state] ?? 0) + 1;
  return counts;
}

/** The dead letters of every subscription, with Retry for writers. */
export async function renderDead(page, { session, signal, query }) {
  page.append(h("h1", { text: "Deliveries" }));
  const after = query.get("after") || "";
  const path = withQuery("/api/v2/deliveries", { state: "dead", limit: 50, after });
  const answer = await api("GET", path, undefined, signal);
  const rows = answer.items.map((d) => {
    const known = d.integrationKey && d.subscriptionName !== undefined;
    const subPath = known && `/api/v2/integrations/${encodeURIComponent(d.integrationKey)}/${encodeURIComponent(d.subscriptionId)}`;
    return [
      h("code", { text: d._id }),
      known ? h("a", { href: subscriptionHref(d.integrationKey, d.subscriptionId), text: d.subscriptionName }) : `${d.subscriptionId} (deleted)`,
      d.eventId === undefined ? "" : h("a", { href: `#/events/${d.eventId}`, text: String(d.eventId) }),
      excerpt(d.reason),
      lastAttempt(d),
      when(d.queuedAt),
      known && canWrite(session) ? retryButton(subPath, d, signal) : "",
    ];
  });
  const headers = ["Delivery", "Subscription", "Event", "Reason", "Last attempt", "Died", "Action"];
  const caption = `Dead letters, newest first (${answer.totalCount} in all)`;
  page.append(
    h("p", { class: "muted", text: "Dead letters: deliveries that used up their attempts, kept for the retention period." }),
    table(caption, headers, rows, "No dead letters."),
  );
  if (answer.next) {
    const older = `#/deliveries?after=${encodeURIComponent(answer.next)}`;
    page.append(h("nav", { class: "pager", "aria-label": "Result pages" }, h("a", { href: older, text: "Older dead letters" })));
  }
}

function lastAttempt(delivery) {
  const attempt = delivery.lastAttempt;
  if (!attempt) return `${delivery.attemptCount} attempts`;
  const said = excerpt(attempt.error || attempt.responseBody);
  const code = attempt.statusCode ?? "no answer";
  return `${delivery.attemptCount} attempts; last ${code} in ${attempt.durationMs} ms${said ? `: ${said}` : ""}`;
}
