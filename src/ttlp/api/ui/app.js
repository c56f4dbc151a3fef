// ttlp web UI: login, role-gated navigation, stream picker, hash router, command palette.

import { moderateUser, QUICK_ACTIONS } from "./actions.js";
import { api, HttpError, setUnauthorizedHandler } from "./api.js";
import { mountDeadLetters } from "./dlq.js";
import { h } from "./dom.js";
import { LiveFeed } from "./feed.js";
import { mountAnalytics, mountLive, mountModerate, mountRules, mountSession, mountSessions } from "./views.js";

const RANK = { VIEWER: 0, MODERATOR: 1, STREAMER: 2 };
const STREAMS_POLL_MS = 5000;

// Views in the navigation, with the lowest role that may use them (DESIGN §7.1): a view the
// role may not use is not rendered at all, neither its link nor its page.
const VIEWS = [
  { id: "live", label: "Live", min: "MODERATOR", mount: mountLive },
  { id: "moderate", label: "Moderate", min: "MODERATOR", mount: mountModerate },
  { id: "analytics", label: "Analytics", min: "VIEWER", mount: mountAnalytics },
  { id: "sessions", label: "Sessions", min: "VIEWER", mount: mountSessions },
  { id: "rules", label: "Rules", min: "MODERATOR", mount: mountRules },
  { id: "dlq", label: "Dead letters", min: "STREAMER", mount: mountDeadLetters },
];
const HIDDEN_VIEWS = [{ id: "session", label: "Session", min: "VIEWER", mount: mountSession }];

const app = {
  account: null,
  stream: null, // streamer handle, without "@"
  feed: null,
  may(role) {
    return Boolean(this.account) && RANK[this.account.role] >= RANK[role];
  },
};
let current = null; // {id, view}
let streamsTimer = 0;

const $ = (id) => document.getElementById(id);

// -- login ---------------------------------------------------------------------------------------
function showLogin(message = "") {
  teardown();
  $("top").hidden = true;
  const user = h("input", { name: "username", autocomplete: "username", required: true, "aria-label": "Username" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "aria-label": "Password" });
  const error = h("p", { class: "error", role: "alert", text: message });
  const form = h(
    "form",
    { class: "login", id: "login" },
    h("h1", { text: "ttlp" }),
    h("label", {}, "Username", user),
    h("label", {}, "Password", pass),
    h("button", { type: "submit", text: "Log in" }),
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const res = await api("/auth/login", { method: "POST", body: { username: user.value, password: pass.value }, quiet401: true });
      start(res.account);
    } catch (err) {
      error.textContent = err instanceof HttpError && err.status === 401 ? "Wrong username or password." : err.message;
    }
  });
  $("main").replaceChildren(form);
  user.focus();
}

function teardown() {
  current?.view.destroy();
  current = null;
  app.feed?.close();
  app.feed = null;
  app.account = null;
  clearTimeout(streamsTimer);
}

async function logout() {
  try {
    await api("/auth/logout", { method: "POST", quiet401: true });
  } finally {
    showLogin();
  }
}

// -- session start -------------------------------------------------------------------------------
async function start(account) {
  teardown();
  app.account = account;
  $("top").hidden = false;
  $("who").textContent = `${account.username} · ${account.role.toLowerCase()}`;
  $("nav").replaceChildren(
    ...VIEWS.filter((v) => app.may(v.min)).map((v) => h("a", { href: `#/${v.id}`, dataset: { view: v.id }, text: v.label })),
  );
  await loadStreams();
  route();
}

/** Handles the account may see: its scopes and the streams stored so far. */
async function loadStreams() {
  const handles = app.account.scopes.filter((s) => s !== "*");
  try {
    for (const s of await api("/streams?limit=100")) if (s.uniqueId && !handles.includes(s.uniqueId)) handles.push(s.uniqueId);
  } catch {
    // keep the scopes
  }
  const select = $("stream");
  select.replaceChildren(...handles.map((x) => h("option", { value: x, text: `@${x}` })));
  const saved = localStorage.getItem("ttlp.stream");
  const pick = handles.includes(saved) ? saved : handles[0] ?? null;
  if (!handles.length) streamsTimer = setTimeout(async () => {
    await loadStreams();
    if (app.stream) route(true);
  }, STREAMS_POLL_MS);
  setStream(pick);
}

function setStream(handle) {
  if (handle === app.stream && (app.feed || !app.may("MODERATOR"))) return;
  app.feed?.close();
  app.feed = null;
  app.stream = handle;
  if (!handle) return;
  $("stream").value = handle;
  localStorage.setItem("ttlp.stream", handle);
  if (app.may("MODERATOR")) {
    app.feed = new LiveFeed(handle);
    app.feed.subscribe(feedStatus);
    app.feed.start();
    feedStatus(app.feed);
  }
}

function feedStatus(feed) {
  const el = $("feed-status");
  el.textContent = `● ${feed.status}${feed.note ? ` (${feed.note})` : ""}`;
  el.dataset.status = feed.status;
}

// -- router --------------------------------------------------------------------------------------
function navigate(path) {
  location.hash = `#/${path}`;
}

function route(force = false) {
  if (!app.account) return;
  const [id, ...params] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const view = [...VIEWS, ...HIDDEN_VIEWS].find((v) => v.id === id && app.may(v.min));
  if (!view) {
    navigate(app.may("MODERATOR") ? "live" : "analytics");
    return;
  }
  for (const a of $("nav").children) a.classList.toggle("active", a.dataset.view === id);
  if (!force && current?.id === id && current.view.update) {
    current.view.update(params);
    return;
  }
  current?.view.destroy();
  const root = h("div", { class: `view view-${id}`, id: `view-${id}` });
  $("main").replaceChildren(root);
  current = { id, view: view.mount(root, { app, params, navigate }) };
}

// -- command palette (Ctrl+K) --------------------------------------------------------------------
/** The user open in the moderator view, or null. */
function selectedUser() {
  const [id, userId] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (id !== "moderate" || !userId) return null;
  const known = app.feed?.users.get(userId);
  const shown = document.querySelector("#user-panel .handle")?.textContent.replace(/^@/, "");
  return { userId, uniqueId: known?.uniqueId ?? shown ?? userId };
}

function paletteItems() {
  const items = [];
  const user = app.may("MODERATOR") ? selectedUser() : null;
  for (const a of user ? QUICK_ACTIONS : []) {
    items.push({ label: `${a.label}: @${user.uniqueId}`, run: () => moderateUser(app, user, a.op) });
  }
  items.push(...VIEWS.filter((v) => app.may(v.min)).map((v) => ({ label: `Go to ${v.label}`, go: v.id })));
  if (app.feed && app.may("MODERATOR")) {
    for (const u of [...app.feed.users.values()].reverse()) {
      items.push({ label: `@${u.uniqueId}${u.displayName ? ` · ${u.displayName}` : ""}`, go: `moderate/${u.userId}` });
    }
  }
  return items;
}

function openPalette() {
  if (!app.account) return;
  const dialog = $("palette");
  const input = $("palette-input");
  const list = $("palette-list");
  let shown = [];
  let active = 0;
  const paint = () => {
    const q = input.value.trim().replace(/^@/, "").toLowerCase();
    // Built on every keystroke: users keep arriving while the palette is open.
    shown = paletteItems().filter((x) => x.label.toLowerCase().includes(q)).slice(0, 30);
    active = Math.min(active, Math.max(0, shown.length - 1));
    list.replaceChildren(
      ...shown.map((x, i) =>
        h("li", { role: "option", "aria-selected": String(i === active), onclick: () => choose(x), text: x.label }),
      ),
    );
  };
  const choose = (x) => {
    dialog.close();
    if (x?.run) x.run();
    else if (x) navigate(x.go);
  };
  input.value = "";
  input.oninput = () => {
    active = 0;
    paint();
  };
  input.onkeydown = (e) => {
    if (e.key === "ArrowDown") active = Math.min(active + 1, shown.length - 1);
    else if (e.key === "ArrowUp") active = Math.max(active - 1, 0);
    else if (e.key === "Enter") return choose(shown[active]);
    else return;
    e.preventDefault();
    paint();
  };
  paint();
  dialog.showModal();
  input.focus();
}

// -- boot ----------------------------------------------------------------------------------------
function boot() {
  setUnauthorizedHandler(() => showLogin("Your session ended: log in again."));
  $("logout").addEventListener("click", logout);
  $("palette-open").addEventListener("click", openPalette);
  $("stream").addEventListener("change", (e) => {
    setStream(e.target.value);
    route(true);
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
      e.preventDefault();
      openPalette();
    }
  });
  window.addEventListener("hashchange", () => route());
  api("/auth/me", { quiet401: true })
    .then(start)
    .catch(() => showLogin());
}

boot();
