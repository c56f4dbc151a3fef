// ttlp web UI: login, role-gated navigation, stream picker, hash router, command palette.
// The shell's own state is ``app`` (account, stream, feed) and the palette's; its plain logic
// (roles, routes, palette filtering) is in nav.js.

import { moderateUser, QUICK_ACTIONS } from "./actions.js";
import { api, HttpError, setUnauthorizedHandler } from "./api.js";
import { mountDeadLetters } from "./dlq.js";
import { bind, h, patch } from "./dom.js";
import { LiveFeed } from "./feed.js";
import { feedStatusText, ingestStatusText, pickIngestReport } from "./format.js";
import { mayOpen, mayUse, moveActive, paletteMatches, parseHash, pickStream, selectedUserId, streamHandles } from "./nav.js";
import { mountAnalytics, mountLive, mountModerate, mountRules, mountSession, mountSessions } from "./views.js";

const STREAMS_POLL_MS = 5000;

/** A view whose module is loaded when it is first opened (the owner's Accounts page): the
 * pages everyone loads stay as small as they were. */
function lazyView(load, name) {
  return (root, ctx) => {
    let view = null;
    let gone = false;
    load().then((module) => {
      if (!gone) view = module[name](root, ctx);
    });
    return {
      update: (params) => view?.update?.(params),
      destroy() {
        gone = true;
        view?.destroy();
      },
    };
  };
}
const mountAccounts = lazyView(() => import("./accounts.js"), "mountAccounts");
const mountOverlays = lazyView(() => import("./overlays.js"), "mountOverlays");
const mountFans = lazyView(() => import("./fans.js"), "mountFans");
const mountForward = lazyView(() => import("./forward.js"), "mountForward");

// Views in the navigation, with the lowest role that may use them (DESIGN §7.1): a view the
// role may not use is not rendered at all, neither its link nor its page.
const VIEWS = [
  { id: "live", label: "Live", min: "MODERATOR", mount: mountLive },
  { id: "moderate", label: "Moderate", min: "MODERATOR", mount: mountModerate },
  { id: "analytics", label: "Analytics", min: "VIEWER", mount: mountAnalytics },
  { id: "sessions", label: "Sessions", min: "VIEWER", mount: mountSessions },
  { id: "fans", label: "Fans", min: "MODERATOR", mount: mountFans },
  { id: "rules", label: "Rules", min: "MODERATOR", mount: mountRules },
  { id: "overlays", label: "Overlays", min: "STREAMER", mount: mountOverlays },
  { id: "forward", label: "Forwarding", min: "STREAMER", mount: mountForward },
  { id: "dlq", label: "Dead letters", min: "STREAMER", mount: mountDeadLetters },
  { id: "accounts", label: "Accounts", min: "STREAMER", owner: true, mount: mountAccounts },
];
const HIDDEN_VIEWS = [{ id: "session", label: "Session", min: "VIEWER", mount: mountSession }];

const app = {
  account: null,
  stream: null, // streamer handle, without "@"
  feed: null,
  may(role) {
    return mayUse(this.account, role);
  },
  mayOpen(view) {
    return mayOpen(this.account, view);
  },
};
let current = null; // {id, view}
let streamsTimer = 0;
let ingestTimer = 0;
const INGEST_POLL_MS = 5000;

const $ = (id) => document.getElementById(id);

// -- login ---------------------------------------------------------------------------------------
function renderLogin(s, act) {
  return h(
    "form",
    { class: "login", id: "login", onsubmit: act.submit },
    h("h1", { text: "ttlp" }),
    h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true, "aria-label": "Username", value: s.username, oninput: (e) => (s.username = e.target.value) })),
    h(
      "label",
      {},
      "Password",
      h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "aria-label": "Password", value: s.password, oninput: (e) => (s.password = e.target.value) }),
    ),
    h("button", { type: "submit", text: "Log in" }),
    h("p", { class: "error", role: "alert", text: s.error }),
    s.noAccount ? h("p", { class: "hint", id: "setup-hint", text: SETUP_HINT }) : null,
  );
}

const SETUP_HINT =
  "No account exists yet. When it started, ttlp printed a setup link in its terminal " +
  "(\"no account yet: open http://…/#/setup/…\"): open it to create the owner account. " +
  "Restarting ttlp prints a new one.";

function showLogin(message = "") {
  teardown();
  $("top").hidden = true;
  const state = { username: "", password: "", error: message, noAccount: false };
  const act = {
    submit: async (e) => {
      e.preventDefault();
      try {
        const res = await api("/auth/login", { method: "POST", body: { username: state.username, password: state.password }, quiet401: true });
        start(res.account);
      } catch (err) {
        update((s) => (s.error = err instanceof HttpError && err.status === 401 ? "Wrong username or password." : err.message));
      }
    },
  };
  const main = $("main");
  const update = bind(main, state, (s) => renderLogin(s, act)); // in place of whatever view was there
  update();
  main.querySelector("input[name=username]").focus();
  api("/auth/setup", { quiet401: true })
    .then((setup) => setup.needed && update((s) => (s.noAccount = true)))
    .catch(() => {});
}

// -- links that open before a login: first-run setup, invites (onboarding.js) --------------------
const ONBOARDING = { setup: "mountSetup", invite: "mountInvite" }; // in onboarding.js, loaded on use

/** Show the setup or invite page when the hash is one of their links; whether it was. Once
 * done the link leaves the address bar and the history (it holds the token). */
function onboarding() {
  const { id, params } = parseHash(location.hash);
  if (!ONBOARDING[id] || !params[0]) return false;
  teardown();
  $("top").hidden = true;
  const done = (account, next) => {
    history.replaceState(null, "", `#/${next}`);
    start(account);
  };
  import("./onboarding.js").then((module) => module[ONBOARDING[id]]($("main"), params[0], done));
  return true;
}

function teardown() {
  current?.view.destroy();
  current = null;
  app.feed?.close();
  app.feed = null;
  app.account = null;
  clearTimeout(streamsTimer);
  clearTimeout(ingestTimer);
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
  renderNav(null);
  await loadStreams();
  route();
  pollIngest();
}

/** The header's ingest line for the picked streamer, refreshed every few seconds. */
async function pollIngest() {
  clearTimeout(ingestTimer);
  if (!app.account) return;
  try {
    const res = await api("/ingest/status", { quiet401: true });
    app.ingest = res.streamers;
  } catch {
    app.ingest = null; // shown as unknown; the next poll tries again
  }
  showIngest();
  ingestTimer = setTimeout(pollIngest, INGEST_POLL_MS);
}

function showIngest() {
  const el = $("ingest-status");
  const report = pickIngestReport(app.ingest ?? [], app.stream);
  const { text, title, state } = ingestStatusText(app.ingest ? report : undefined);
  el.textContent = text;
  el.title = title;
  el.dataset.state = state;
}

/** Handles the account may see: its scopes and the streams stored so far. */
async function loadStreams() {
  let streams = [];
  try {
    streams = await api("/streams?limit=100");
  } catch {
    // keep the scopes
  }
  const handles = streamHandles(app.account.scopes, streams);
  patch($("stream"), handles.map((x) => h("option", { value: x, text: `@${x}` })));
  const pick = pickStream(handles, localStorage.getItem("ttlp.stream"));
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
  showIngest();
  if (app.may("MODERATOR")) {
    app.feed = new LiveFeed(handle);
    app.feed.subscribe(feedStatus);
    app.feed.start();
    feedStatus(app.feed);
  }
}

function feedStatus(feed) {
  const el = $("feed-status");
  el.textContent = feedStatusText(feed.status, feed.note);
  el.dataset.status = feed.status;
}

// -- router --------------------------------------------------------------------------------------
/** The links of the views the role may use, ``active`` highlighted. */
function renderNav(active) {
  patch(
    $("nav"),
    VIEWS.filter((v) => app.mayOpen(v)).map((v) =>
      h("a", { href: `#/${v.id}`, class: v.id === active ? "active" : undefined, dataset: { view: v.id }, text: v.label }),
    ),
  );
  // On a phone the links are one row that scrolls sideways: keep the open view's link in sight.
  const nav = $("nav");
  const link = nav.querySelector("a.active");
  if (link && nav.scrollWidth > nav.clientWidth) {
    const [box, at] = [nav.getBoundingClientRect(), link.getBoundingClientRect()];
    nav.scrollLeft += at.left - box.left - (box.width - at.width) / 2; // centred, as far as it goes
  }
}

function navigate(path) {
  location.hash = `#/${path}`;
}

function route(force = false) {
  if (!app.account) return;
  const { id, params } = parseHash(location.hash);
  const view = [...VIEWS, ...HIDDEN_VIEWS].find((v) => v.id === id && app.mayOpen(v));
  if (!view) {
    navigate(app.may("MODERATOR") ? "live" : "analytics");
    return;
  }
  renderNav(id);
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
  const userId = selectedUserId(location.hash);
  if (!userId) return null;
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
  items.push(...VIEWS.filter((v) => app.mayOpen(v)).map((v) => ({ label: `Go to ${v.label}`, go: v.id })));
  if (app.feed && app.may("MODERATOR")) {
    for (const u of [...app.feed.users.values()].reverse()) {
      items.push({ label: `@${u.uniqueId}${u.displayName ? ` · ${u.displayName}` : ""}`, go: `moderate/${u.userId}` });
    }
  }
  return items;
}

const palette = { query: "", active: 0, shown: [] };
let updatePalette = () => {}; // bound to #palette-list in boot()

function renderPalette(s) {
  return s.shown.map((x, i) => h("li", { role: "option", "aria-selected": String(i === s.active), onclick: () => choose(x), text: x.label }));
}

/** Apply ``change``, re-filter the items (users keep arriving while the palette is open) and
 * paint the list. */
function paintPalette(change) {
  updatePalette((s) => {
    change?.(s);
    s.shown = paletteMatches(paletteItems(), s.query);
    s.active = moveActive(s.active, "", s.shown.length);
  });
}

function choose(x) {
  $("palette").close();
  if (x?.run) x.run();
  else if (x) navigate(x.go);
}

function openPalette() {
  if (!app.account) return;
  const input = $("palette-input");
  input.value = "";
  paintPalette((s) => Object.assign(s, { query: "", active: 0 }));
  $("palette").showModal();
  input.focus();
}

function paletteKey(e) {
  if (e.key === "Enter") return choose(palette.shown[palette.active]);
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
  e.preventDefault();
  paintPalette((s) => (s.active = moveActive(s.active, e.key, s.shown.length)));
}

// -- boot ----------------------------------------------------------------------------------------
function boot() {
  setUnauthorizedHandler(() => showLogin("Your session ended: log in again."));
  $("logout").addEventListener("click", logout);
  updatePalette = bind($("palette-list"), palette, renderPalette);
  $("palette-open").addEventListener("click", openPalette);
  $("palette-input").addEventListener("input", (e) => paintPalette((s) => Object.assign(s, { query: e.target.value, active: 0 })));
  $("palette-input").addEventListener("keydown", paletteKey);
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
  window.addEventListener("hashchange", () => onboarding() || route());
  if (onboarding()) return;
  api("/auth/me", { quiet401: true })
    .then(start)
    .catch(() => showLogin());
}

boot();
