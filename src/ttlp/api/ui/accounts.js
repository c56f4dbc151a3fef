// Accounts (the owner only: an enabled STREAMER of scope *): invite someone with a one-time
// link, change a role or scope, disable, delete (asks twice), withdraw an open invite.
// The server refuses what would leave no owner; the page does not offer it in the first place.

import {
  accountChange,
  EXPIRY_CHOICES,
  expiresText,
  inviteLink,
  isLastOwner,
  parseScopes,
  ROLES,
  scopeInput,
  scopeText,
  usernameProblem,
} from "./accountlogic.js";
import { api } from "./api.js";
import { bind, h, toast } from "./dom.js";
import { dateTime, errorLines } from "./format.js";
import { lifetime } from "./lifetime.js";

const DELETE_ARM_MS = 4000;

function roleSelect(value, props) {
  return h(
    "select",
    { value, ...props },
    ROLES.map((r) => h("option", { value: r, text: r.toLowerCase() })),
  );
}

function renderInviteForm(s, act) {
  const f = s.form;
  return h(
    "section",
    { class: "card invite-form", id: "invite" },
    h("h2", { text: "Invite someone" }),
    h("p", { class: "muted", text: "They get a one-time link and choose their own password. No password to pass on." }),
    h(
      "form",
      { class: "form-grid", onsubmit: act.invite },
      h("label", { class: "field" }, "Username", h("input", { name: "username", required: true, autocomplete: "off", value: f.username, oninput: (e) => act.form("username", e.target.value) })),
      h("label", { class: "field" }, "Role", roleSelect(f.role, { name: "role", onchange: (e) => act.form("role", e.target.value) })),
      h(
        "label",
        { class: "field grow" },
        "Streamers",
        h("input", { name: "scope", required: true, placeholder: "luna.beats, other.handle or *", value: f.scope, oninput: (e) => act.form("scope", e.target.value) }),
      ),
      h(
        "label",
        { class: "field" },
        "Link valid for",
        h("select", { name: "expires", value: String(f.expires), onchange: (e) => act.form("expires", Number(e.target.value)) }, EXPIRY_CHOICES.map((c) => h("option", { value: String(c.value), text: c.label }))),
      ),
      h("button", { type: "submit", class: "primary", disabled: s.busy.has("invite"), text: "Create invite link" }),
    ),
    h("div", { class: "form-errors", role: "alert" }, s.formError.map((line) => h("p", { class: "error", text: line }))),
    s.created
      ? h(
          "div",
          { class: "invite-created", id: "invite-created" },
          h("p", { text: `Send this link to ${s.created.username}. It works once, ${expiresText(s.created.expiresAt, s.now)}; nobody can see it again.` }),
          h(
            "div",
            { class: "link-row" },
            h("input", { class: "invite-link", readonly: true, "aria-label": "Invite link", value: s.created.link, onfocus: (e) => e.target.select() }),
            h("button", { type: "button", class: "copy-link", text: "Copy", onclick: act.copy }),
          ),
        )
      : null,
  );
}

function renderAccountRow(a, s, act) {
  const edit = s.edits.get(a.username) ?? { role: a.role, scope: scopeInput(a.scopes) };
  const last = isLastOwner(a, s.accounts);
  const changed = accountChange(a, edit);
  const armed = s.armed.has(a.username);
  const lastNote = "the last owner: make another account owner first";
  return h(
    "tr",
    { key: a.username, dataset: { username: a.username }, class: a.disabled ? "disabled" : undefined },
    h(
      "td",
      { dataset: { label: "account" } },
      h("strong", { text: a.username }),
      a.username === s.me ? h("span", { class: "tag", text: "you" }) : null,
      a.owner ? h("span", { class: "tag owner", text: "owner" }) : null,
    ),
    h("td", { dataset: { label: "role" } }, roleSelect(edit.role, { "aria-label": `Role of ${a.username}`, class: "edit-role", disabled: last, title: last ? lastNote : undefined, onchange: (e) => act.edit(a, { role: e.target.value }) })),
    h(
      "td",
      { dataset: { label: "streamers" } },
      h("input", { class: "edit-scope", "aria-label": `Streamers of ${a.username}`, value: edit.scope, disabled: last, title: last ? lastNote : scopeText(a.scopes), oninput: (e) => act.edit(a, { scope: e.target.value }) }),
      changed.error ? h("p", { class: "error", text: changed.error }) : null,
    ),
    h("td", { dataset: { label: "status" }, class: "status", text: a.disabled ? "disabled" : "active" }),
    h("td", { dataset: { label: "since" }, text: dateTime(a.createdAt) }),
    h(
      "td",
      { class: "row-actions" },
      changed.body ? h("button", { type: "button", class: "save primary", text: "Save", onclick: () => act.save(a) }) : null,
      h("button", { type: "button", class: "toggle", disabled: last && !a.disabled, title: last ? lastNote : undefined, text: a.disabled ? "Enable" : "Disable", onclick: () => act.toggle(a) }),
      h("button", {
        type: "button",
        class: "delete danger",
        disabled: last,
        title: last ? lastNote : undefined,
        dataset: armed ? { armed: "1" } : undefined,
        text: armed ? "Really delete?" : "Delete",
        onclick: () => act.remove(a),
      }),
    ),
  );
}

function renderInviteRow(x, s, act) {
  return h(
    "tr",
    { key: x.id, dataset: { invite: String(x.id) } },
    h("td", { dataset: { label: "account" } }, h("strong", { text: x.username })),
    h("td", { dataset: { label: "role" }, text: x.role.toLowerCase() }),
    h("td", { dataset: { label: "streamers" }, text: scopeText(x.scopes) }),
    h("td", { dataset: { label: "expires" }, text: expiresText(x.expiresAt, s.now) }),
    h("td", { dataset: { label: "by" }, text: x.createdBy }),
    h("td", { class: "row-actions" }, h("button", { type: "button", class: "withdraw", text: "Withdraw", onclick: () => act.withdraw(x) })),
  );
}

function render(s, act) {
  return [
    h("h1", { text: "Accounts" }),
    renderInviteForm(s, act),
    h(
      "section",
      { class: "card" },
      h("h2", { text: "Accounts" }),
      s.error ? h("p", { class: "error", text: `Could not load: ${s.error}` }) : null,
      h(
        "table",
        { class: "grid accounts stacked" },
        h("thead", {}, h("tr", {}, ["account", "role", "streamers", "status", "since", ""].map((x) => h("th", { text: x })))),
        h("tbody", {}, (s.accounts ?? []).map((a) => renderAccountRow(a, s, act))),
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", { text: "Open invites" }),
      s.invites?.length
        ? h(
            "table",
            { class: "grid invites stacked" },
            h("thead", {}, h("tr", {}, ["account", "role", "streamers", "expires", "by", ""].map((x) => h("th", { text: x })))),
            h("tbody", {}, s.invites.map((x) => renderInviteRow(x, s, act))),
          )
        : h("p", { class: "muted none", text: s.invites ? "No open invites." : "" }),
    ),
  ];
}

export function mountAccounts(root, ctx) {
  const { app } = ctx;
  const life = lifetime();
  const state = {
    me: app.account.username,
    now: Date.now(),
    accounts: null,
    invites: null,
    error: "",
    form: { username: "", role: "MODERATOR", scope: app.stream ?? "", expires: EXPIRY_CHOICES[1].value },
    formError: [],
    created: null, // {username, link, expiresAt}: the link just made, shown once
    edits: new Map(), // username → {role, scope} typed but not saved
    armed: new Set(), // usernames whose Delete asks for the second click
    busy: new Set(),
  };

  const load = async () => {
    try {
      const [accounts, invites] = await Promise.all([api("/accounts"), api("/accounts/invites")]);
      if (life.alive) update((s) => Object.assign(s, { accounts, invites, error: "", now: Date.now() }));
    } catch (err) {
      if (life.alive) update((s) => (s.error = err.message));
    }
  };

  // One change of one account: the answer replaces the row (or the list reloads).
  const change = async (a, body, done) => {
    try {
      await api(`/accounts/${encodeURIComponent(a.username)}`, { method: "PATCH", body });
      update((s) => s.edits.delete(a.username));
      toast(done);
    } catch (err) {
      toast(`${a.username}: ${err.message}`);
    }
    load();
  };

  const act = {
    form: (key, value) => update((s) => (s.form[key] = value)),
    invite: async (e) => {
      e.preventDefault();
      const f = state.form;
      const scope = parseScopes(f.scope);
      const problems = [usernameProblem(f.username), scope.error].filter(Boolean);
      if (problems.length) return update((s) => (s.formError = problems));
      update((s) => {
        s.formError = [];
        s.busy.add("invite");
      });
      try {
        const made = await api("/accounts/invites", { method: "POST", body: { username: f.username, role: f.role, scopes: scope.scopes, expiresInS: f.expires } });
        update((s) => {
          s.created = { username: made.username, link: inviteLink(location.origin, made.path), expiresAt: made.expiresAt };
          s.form = { ...s.form, username: "" };
        });
        load();
      } catch (err) {
        update((s) => (s.formError = errorLines(err)));
      } finally {
        update((s) => s.busy.delete("invite"));
      }
    },
    copy: async () => {
      const input = root.querySelector(".invite-link");
      try {
        await navigator.clipboard.writeText(state.created.link);
        toast("Link copied");
      } catch {
        input?.select(); // no clipboard access (not a secure origin): selected for Ctrl+C
        toast("Select and copy the link");
      }
    },
    edit: (a, patch) => update((s) => s.edits.set(a.username, { role: a.role, scope: scopeInput(a.scopes), ...s.edits.get(a.username), ...patch })),
    save: (a) => {
      const { body, error } = accountChange(a, state.edits.get(a.username) ?? {});
      if (error || !body) return;
      change(a, body, `${a.username} changed: their sessions ended, they log in again`);
    },
    toggle: (a) => change(a, { disabled: !a.disabled }, a.disabled ? `${a.username} enabled` : `${a.username} disabled: their sessions ended`),
    remove: async (a) => {
      if (!state.armed.has(a.username)) {
        update((s) => s.armed.add(a.username));
        life.later(() => update((s) => s.armed.delete(a.username)), DELETE_ARM_MS);
        return;
      }
      update((s) => s.armed.delete(a.username));
      try {
        await api(`/accounts/${encodeURIComponent(a.username)}`, { method: "DELETE" });
        toast(`${a.username} deleted`);
      } catch (err) {
        toast(`${a.username}: ${err.message}`);
      }
      load();
    },
    withdraw: async (x) => {
      try {
        await api(`/accounts/invites/${x.id}`, { method: "DELETE" });
        toast(`Invite of ${x.username} withdrawn`);
      } catch (err) {
        toast(err.message);
      }
      if (state.created?.username === x.username) update((s) => (s.created = null));
      load();
    },
  };

  const update = bind(root, state, (s) => render(s, act));
  update();
  load();
  return { destroy: () => life.end() };
}
