// Tokens (admins): the list, a form to create one (its secret shown once), Revoke.

import { api, field, h, showError, statusLine, table, when } from "./lib.js";

const ROLES = ["reader", "writer", "admin", "ingest"];

/** The tokens page; non-admins get the API's refusal. */
export async function render(page, { signal }) {
  page.append(h("h1", { text: "Tokens" }));
  const message = statusLine();
  const list = h("div");
  const reload = async () => list.replaceChildren(tokenTable(await api("GET", "/api/v2/tokens", undefined, signal), message, reload));
  page.append(createForm(message, reload), message, list);
  await reload();
}

function createForm(message, reload) {
  const [nameField, name] = field("Name", { required: true, maxlength: 200, id: "token-name" });
  const [roleField, role] = field("Role", { id: "token-role" }, "select");
  role.append(...ROLES.map((value) => h("option", { value, text: value })));
  const create = async (submitted) => {
    submitted.preventDefault();
    message.className = "status";
    try {
      const made = await api("POST", "/api/v2/tokens", { name: name.value, role: role.value });
      message.replaceChildren(
        `Token ${made.name} (${made.role}) created. Its secret, shown only now: `,
        h("code", { class: "secret", text: made.token }),
      );
      name.value = "";
      await reload();
    } catch (error) {
      showError(message, error);
    }
  };
  return h(
    "form",
    { class: "inline", "aria-label": "Create a token", on: { submit: create } },
    nameField,
    roleField,
    h("button", { type: "submit", text: "Create token" }),
  );
}

function tokenTable(answer, message, reload) {
  const revoke = (token) => async () => {
    try {
      await api("DELETE", `/api/v2/tokens/${encodeURIComponent(token._id)}`);
      message.className = "status";
      message.textContent = `Token ${token.name} revoked.`;
      await reload();
    } catch (error) {
      showError(message, error);
    }
  };
  const rows = answer.items.map((token) => [
    token.name,
    token.role,
    when(token.creationDate),
    h("button", { type: "button", "aria-label": `Revoke ${token.name}`, on: { click: revoke(token) }, text: "Revoke" }),
  ]);
  return table(`${answer.totalCount} tokens`, ["Name", "Role", "Created", "Action"], rows, "No tokens.");
}
