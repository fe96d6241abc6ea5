// Overview: what `relay status` shows, refreshed every few seconds. Rates per minute come
// from the difference between successive totals over the last minute.

import { api, ApiError, formatTime, h, pause, percent, subscriptionHref, table, when } from "./lib.js";

const REFRESH_MS = 5000;
const WINDOW_MS = 60_000;

/** Draw the overview and refresh it until the page is left. */
export async function render(page, { signal }) {
  const updated = h("p", { class: "muted", role: "status" });
  const body = h("div");
  page.append(h("h1", { text: "Overview" }), updated, body);
  const samples = []; // {at, delivered, failed}, the last minute's
  while (!signal.aborted) {
    try {
      const status = await api("GET", "/api/v2/status", undefined, signal);
      samples.push(totals(status));
      while (samples.length > 2 && samples[0].at < status.at - WINDOW_MS) samples.shift();
      body.replaceChildren(...sections(status, samples));
      updated.textContent = `Updated ${formatTime(status.at)}; refreshes every ${REFRESH_MS / 1000} s.`;
    } catch (error) {
      if (signal.aborted || (error instanceof ApiError && error.status === 401)) return;
      // a reading missed (the relay restarting, a 503): say so and try again
      updated.textContent = `Not updated: ${error.message}. Trying again every ${REFRESH_MS / 1000} s.`;
    }
    await pause(REFRESH_MS, signal);
  }
}

function totals(status) {
  let delivered = 0;
  let failed = 0;
  for (const sub of status.subscriptions) {
    delivered += sub.successCount;
    failed += sub.errorCount;
  }
  return { at: status.at, delivered, failed };
}

function sections(status, samples) {
  return [
    h("div", { class: "cards" }, cards(status, samples)),
    troubled(status),
    queues(status),
    workers(status),
  ];
}

function cards(status, samples) {
  const first = samples[0];
  const last = samples[samples.length - 1];
  const minutes = (last.at - first.at) / 60_000;
  const rate = (key) => (minutes > 0 ? ((last[key] - first[key]) / minutes).toFixed(1) : "…");
  const windowDelivered = last.delivered - first.delivered;
  const windowAttempts = windowDelivered + last.failed - first.failed;
  const failing = status.subscriptions.filter(isFailing).length;
  const paused = status.subscriptions.filter((s) => isPaused(s, status.at)).length;
  const dead = status.queues.dead;
  return [
    card("Deliveries per minute", rate("delivered"), `failed attempts per minute: ${rate("failed")}`),
    card(
      "Success rate",
      windowAttempts > 0
        ? percent(windowDelivered, windowAttempts)
        : percent(last.delivered, last.delivered + last.failed),
      windowAttempts > 0 ? "of attempts in the last minute" : "of attempts since the counts began",
    ),
    card("Failing subscriptions", String(failing), `of ${status.subscriptions.length}`),
    card("Paused subscriptions", String(paused), "waiting for their receiver's Retry-After"),
    card("Dead letters", String(dead), h("a", { href: "#/deliveries", text: "See dead letters" })),
  ];
}

function card(title, value, note) {
  return h(
    "section",
    { class: "card", "aria-label": title },
    h("h2", { text: title }),
    h("p", { class: "value", text: value }),
    h("p", { class: "muted" }, note),
  );
}

function isFailing(sub) {
  return sub.failingSince !== null && sub.failingSince !== undefined;
}

function isPaused(sub, now) {
  return Boolean(sub.pausedUntil && sub.pausedUntil > now);
}

function troubled(status) {
  const rows = status.subscriptions
    .filter((s) => !s.on || isFailing(s) || isPaused(s, status.at) || s.dead > 0 || s.circuit)
    .map((s) => [
      s.integrationKey ? h("a", { href: subscriptionHref(s.integrationKey, s.id), text: s.name }) : s.name,
      state(s, status.at),
      String(s.errorCount),
      String(s.dead),
      s.lastErrorText ?? "",
    ]);
  const headers = ["Subscription", "State", "Errors", "Dead", "Last error"];
  return table("Subscriptions needing attention", headers, rows, "All subscriptions are healthy.");
}

function state(sub, now) {
  if (!sub.on) return sub.disabledReason ? `off: ${sub.disabledReason}` : "off";
  const parts = [];
  if (sub.circuit) parts.push(`circuit ${sub.circuit}`);
  if (isPaused(sub, now)) parts.push(`paused until ${formatTime(sub.pausedUntil)}`);
  if (isFailing(sub)) parts.push(`failing since ${formatTime(sub.failingSince)}`);
  return parts.join(", ") || "on";
}

const QUEUES = [
  ["outbox", "recorded events waiting for fan-out"],
  ["due", "deliveries still to deliver"],
  ["ready", "of those, due now"],
  ["claims", "deliveries a worker is attempting"],
  ["waiting", "held back: at the cap or rate, paused, circuit open"],
  ["dead", "dead letters"],
];

function queues(status) {
  const rows = QUEUES.map(([name, meaning]) => [name, String(status.queues[name] ?? 0), meaning]);
  return table("Queue depths", ["Queue", "Depth", "Meaning"], rows);
}

function workers(status) {
  const rows = status.workers.map((w) => [w.name, w.alive ? "alive" : "silent", when(w.lastSeen)]);
  return table("Workers", ["Worker", "State", "Last heartbeat"], rows, "No worker has sent a heartbeat.");
}
