// What every page shares: the API client (session cookie, CSRF header), DOM builders that
// only ever set text (event data and names are attacker-controlled: never innerHTML), and
// formatting of times and rates.

let csrfToken = "";
let onSignedOut = () => {};

/** Remember the session's CSRF token, sent on every unsafe request. */
export function useSession(token, signedOut) {
  csrfToken = token;
  onSignedOut = signedOut;
}

/** An API answer other than 2xx; `message` is the seeds' error message when there is one. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && typeof body.message === "string" ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const SAFE = new Set(["GET", "HEAD"]);

/** Call the relay API with the session cookie; the parsed JSON answer (null when empty). */
export async function api(method, path, body, signal) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method)) headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (response.status === 401 && !path.startsWith("/console/session")) onSignedOut();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `path?query` from an object, leaving out empty values. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * An element: `props` are attributes (`class`, `for`, `aria-*`, ...), `text` its text, `on`
 * its event listeners; children are nodes or strings (added as text nodes).
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") element.textContent = String(value);
    else if (name === "on") {
      for (const [type, listener] of Object.entries(value)) element.addEventListener(type, listener);
    } else if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat(Infinity).filter((c) => c !== undefined && c !== null));
  return element;
}

/** A table with a caption, header cells and rows of cells (strings or nodes). */
export function table(caption, headers, rows, empty = "Nothing to show.") {
  const head = h("tr", {}, headers.map((text) => h("th", { scope: "col", text })));
  const body = rows.length
    ? rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell ?? ""))))
    : [h("tr", {}, h("td", { colspan: headers.length, class: "empty", text: empty }))];
  return h("table", {}, h("caption", { text: caption }), h("thead", {}, head), h("tbody", {}, body));
}

/** A labelled input (or select/textarea when `tag` says so); returns [wrapper, control]. */
export function field(label, props = {}, tag = "input") {
  const id = props.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  const control = h(tag, { ...props, id });
  return [h("div", { class: "field" }, h("label", { for: id, text: label }), control), control];
}

/** A polite status line for results of actions. */
export function statusLine(className = "status") {
  return h("p", { class: className, role: "status" });
}

/** Show an error in `element` (its message, said to screen readers). */
export function showError(element, error) {
  element.textContent = error instanceof ApiError ? `${error.message} (${error.status})` : String(error);
  element.className = "error";
}

/** A date and time from ms since the epoch or an ISO string; "" when none. */
export function formatTime(value) {
  if (value === undefined || value === null || value === "") return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** A <time> element for a table cell (kept on one line by the style sheet). */
export function when(value) {
  const text = formatTime(value);
  return text ? h("time", { datetime: new Date(value).toISOString(), text }) : "";
}

/** `part / whole` as a percentage, "–" when there is nothing to divide. */
export function percent(part, whole) {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : "–";
}

/** Pretty JSON, for config and event data shown in <pre>. */
export function json(value) {
  return JSON.stringify(value, null, 2);
}

/** Call `callback` once `delay` ms passed without another call. */
export function debounce(callback, delay) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => callback(...args), delay);
  };
}

/** A promise resolved after `ms`, or at once when `signal` aborts. */
export function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Every subscription of every integration, as `GET /api/v2/integrations/{key}` lists them. */
export async function allSubscriptions(signal) {
  const manifests = await api("GET", "/api/v2/integration-manifests", undefined, signal);
  const pages = manifests.items.map((manifest) => subscriptionsOf(manifest.key, signal));
  return (await Promise.all(pages)).flat();
}

async function subscriptionsOf(key, signal) {
  const found = [];
  for (let offset = 0; ; offset += 100) {
    const path = withQuery(`/api/v2/integrations/${encodeURIComponent(key)}`, { limit: 100, offset });
    const page = await api("GET", path, undefined, signal);
    found.push(...page.items);
    if (found.length >= page.totalCount || page.items.length === 0) return found;
  }
}

/** The console's link to a subscription's page. */
export function subscriptionHref(kind, id) {
  return `#/subscriptions/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`;
}

/** Whether the signed-in role may change things (writers and admins). */
export function canWrite(session) {
  return session.role === "writer" || session.role === "admin";
}
