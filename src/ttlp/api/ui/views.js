// The views. Each ``mount(root, ctx)`` keeps its state in one plain object, renders ``root``
// from it with ``render(state)`` (handlers change the state and re-render) and returns an object
// with ``destroy()`` and, optionally, ``update(params)`` (same view, other parameters: no
// remount). The feed panel is a component of its own, kept across re-renders.

import { moderateUser, onModerated, QUICK_ACTIONS } from "./actions.js";
import { api, qs } from "./api.js";
import { barChart } from "./charts.js";
import { bind, cdnImg, h, patch, toast } from "./dom.js";
import { feedPanel, renderEvent } from "./feed.js";
import { foldHistory } from "./feedlog.js";
import { coverageLines, dateTime, gifterLine, replayProgress, sessionCells, sessionLines, summaryRows } from "./format.js";
import { lifetime } from "./lifetime.js";
import { analyticsQuery, analyticsView, BUCKETS } from "./stats.js";

const ANALYTICS_REFRESH_MS = 15000;
// The sessions list follows a running session (its counters, its end, the next one starting).
const SESSIONS_REFRESH_MS = 5000;
const PROGRESS_POLL_MS = 1000;
const PROGRESS_MAX_POLLS = 180;
const USER_RETRIES = 5;
const USER_RETRY_MS = 700;

// A phone (the breakpoint of style.css's phone layout): the user panel is a bottom sheet.
const SHEET_MEDIA = "(max-width: 700px)";

/** Open a TikTok user in the moderator view from a feed: a new history entry, marked as
 * opened from a feed, so that closing its sheet is going back to that feed. */
function openUser(ctx, user) {
  ctx.navigate(`moderate/${user.userId}`);
  history.replaceState({ fromFeed: true }, "");
}

function waitingForStream(root) {
  patch(root, h("p", { class: "muted", text: "No stream yet: waiting for the first broadcast…" }));
  return { destroy() {} };
}

function errorLine(message) {
  return h("p", { class: "error", text: `Could not load: ${message}` });
}

// -- analytics (the dashboard's overview and the analytics page) ---------------------------------
/** GET /analytics shaped for ``renderAnalytics``: {view} or {error}. */
async function fetchAnalytics(stream, opts) {
  try {
    const result = await api(`/analytics${qs(analyticsQuery(stream, opts))}`);
    return { view: analyticsView(result, opts) };
  } catch (err) {
    return { error: err.message };
  }
}

function table(title, heads, rows) {
  return h(
    "table",
    { class: "grid" },
    h("caption", { text: title }),
    h("thead", {}, h("tr", {}, heads.map((x) => h("th", { text: x })))),
    h(
      "tbody",
      {},
      rows.length
        ? rows.map((r) => h("tr", {}, r.map((c) => h("td", { text: String(c) }))))
        : h("tr", {}, h("td", { colspan: heads.length, class: "muted", text: "none yet" })),
    ),
  );
}

function renderAnalytics(analytics) {
  if (!analytics) return null;
  if (analytics.error) return errorLine(analytics.error);
  const v = analytics.view;
  return [
    h("div", { class: "stats" }, v.stats.map(([label, value]) => h("div", { class: "stat" }, h("strong", { text: String(value) }), h("span", { text: label })))),
    v.charts.map((c) => barChart(c.title, c.points, c.unit)),
    h(
      "div",
      { class: "tops" },
      table("Top gifters", ["who", "coins", "gifts"], v.gifters),
      table("Top chatters", ["who", "messages"], v.chatters),
    ),
    v.byType ? table("Events by type", ["type", "count"], v.byType) : null,
  ];
}

// -- live dashboard ------------------------------------------------------------------------------
export function mountLive(root, ctx) {
  const { app } = ctx;
  if (!app.feed) return waitingForStream(root);
  const life = lifetime();
  const panel = feedPanel(app.feed, { onUser: (u) => openUser(ctx, u) });
  const state = { analytics: null };
  const board = h("div", { class: "dashboard" });
  patch(root, board);
  const update = bind(board, state, (s) => [panel.el, h("aside", { class: "overview", id: "overview" }, renderAnalytics(s.analytics))]);
  const load = async () => {
    const analytics = await fetchAnalytics(app.stream, { compact: true });
    if (life.alive) update((s) => (s.analytics = analytics));
  };
  update();
  load();
  life.every(load, ANALYTICS_REFRESH_MS);
  return {
    destroy() {
      life.end();
      panel.destroy();
    },
  };
}

export function mountAnalytics(root, ctx) {
  const { app } = ctx;
  if (!app.stream) return waitingForStream(root);
  const life = lifetime();
  const state = { sessionId: "", bucket: "60", since: "", until: "", sessions: [], analytics: null };
  let asked = 0; // the latest request wins
  const load = async () => {
    const n = ++asked;
    const { sessionId, since, until } = state;
    const analytics = await fetchAnalytics(app.stream, { sessionId, bucket: Number(state.bucket), since, until });
    if (life.alive && n === asked) update((s) => (s.analytics = analytics));
  };
  const change = (key) => (e) => {
    update((s) => (s[key] = e.target.value));
    load();
  };
  const keep = (key) => (e) => update((s) => (s[key] = e.target.value)); // typed, not yet chosen
  const render = (s) => [
    h("h1", { text: "Analytics" }),
    h(
      "div",
      { class: "toolbar" },
      h(
        "select",
        { "aria-label": "Session", value: s.sessionId, onchange: change("sessionId") },
        h("option", { value: "", text: `all of @${app.stream}` }),
        s.sessions.map((x) => h("option", { value: x.id, text: `${dateTime(x.createdAt)} · ${x.type}` })),
      ),
      h("select", { "aria-label": "Bucket", value: s.bucket, onchange: change("bucket") }, BUCKETS.map((b) => h("option", { value: b.value, text: b.label }))),
      h("label", { text: "from" }),
      h("input", { type: "datetime-local", "aria-label": "From", value: s.since, oninput: keep("since"), onchange: change("since") }),
      h("label", { text: "to" }),
      h("input", { type: "datetime-local", "aria-label": "To", value: s.until, oninput: keep("until"), onchange: change("until") }),
    ),
    h("div", { class: "analytics" }, renderAnalytics(s.analytics)),
  ];
  const update = bind(root, state, render);
  update();
  api(`/streams/@${app.stream}/sessions?limit=50`)
    .then((rows) => life.alive && update((s) => (s.sessions = rows)))
    .catch(() => {});
  load();
  return { destroy: () => life.end() };
}

// -- sessions ------------------------------------------------------------------------------------
const SESSION_COLUMNS = ["duration", "events", "coins", "gifters", "peak viewers"];

function renderSessionRow(x, s, act) {
  const progress = s.progress.get(x.id);
  return h(
    "tr",
    { key: x.id, dataset: { session: x.id }, class: x.live ? "running" : undefined },
    h("td", {}, h("a", { href: `#/session/${x.id}`, text: x.id.slice(0, 8) }), x.live ? h("span", { class: "badge live", text: "live" }) : null),
    h("td", { text: x.type }),
    h("td", { text: dateTime(x.createdAt) }),
    h("td", { text: dateTime(x.endedAt) + (x.interrupted ? " · interrupted" : ""), class: x.interrupted ? "interrupted" : undefined }),
    sessionCells(x).map((text, i) => h("td", { class: "num", dataset: { col: SESSION_COLUMNS[i] }, text })),
    h("td", {}, x.replayedFrom ? h("a", { href: `#/session/${x.replayedFrom}`, class: "replayed-from", text: x.replayedFrom.slice(0, 8) }) : "—"),
    h(
      "td",
      {},
      s.canReplay ? h("button", { type: "button", class: "replay", text: "Replay", onclick: () => act.replay(x.id) }) : null,
      progress ? h("span", { class: progress.done ? "progress done" : "progress", text: progress.text }) : null,
    ),
  );
}

export function mountSessions(root, ctx) {
  const { app } = ctx;
  if (!app.stream) return waitingForStream(root);
  const life = lifetime();
  const state = {
    canReplay: app.may("STREAMER"),
    rows: [],
    error: "",
    progress: new Map(), // source session id → {text, done}, kept across reloads
  };
  const act = { replay: (id) => replay(id) };
  const render = (s) => [
    h("h1", { text: `Sessions of @${app.stream}` }),
    h(
      "table",
      { class: "grid sessions" },
      h("thead", {}, h("tr", {}, ["session", "type", "started", "ended", ...SESSION_COLUMNS, "replay of", ""].map((x) => h("th", { text: x })))),
      h("tbody", {}, s.error ? h("tr", {}, h("td", { colspan: 11 }, errorLine(s.error))) : s.rows.map((x) => renderSessionRow(x, s, act))),
    ),
  ];
  const update = bind(root, state, render);

  const load = async () => {
    try {
      const rows = await api(`/streams/@${app.stream}/sessions?limit=100&summary=true`);
      if (life.alive) update((s) => Object.assign(s, { rows, error: "" }));
    } catch (err) {
      if (life.alive) update((s) => (s.error = err.message));
    }
  };

  const replay = async (sourceId) => {
    const show = (text, done = false) => update((s) => s.progress.set(sourceId, { text, done }));
    show("requested…");
    load();
    let accepted;
    let total = null;
    try {
      accepted = await api(`/sessions/${sourceId}/replay`, { method: "POST" });
      total = (await api(`/sessions/${sourceId}`)).eventCount;
    } catch (err) {
      show(`failed: ${err.message}`);
      return;
    }
    let polls = 0;
    let seen = false;
    const poll = async () => {
      polls += 1;
      try {
        const s = await api(`/sessions/${accepted.sessionId}`);
        const progress = replayProgress(s.eventCount, total);
        show(progress.text, progress.done);
        if (!seen || progress.done) load(); // the new session is a row now / its end
        seen = true;
        if (progress.done) return;
      } catch {
        show("queued…"); // not stored yet
      }
      if (polls < PROGRESS_MAX_POLLS) life.later(poll, PROGRESS_POLL_MS);
    };
    poll();
  };

  update();
  load();
  life.every(load, SESSIONS_REFRESH_MS);
  return { destroy: () => life.end() };
}

// A session's downloads (GET /sessions/{id}/export): MODERATOR and up, as the API allows (they
// carry handles and chat text). The server names the file (Content-Disposition).
const EXPORT_FORMATS = [
  ["ndjson", "NDJSON"],
  ["csv", "CSV"],
  ["parquet", "Parquet"],
  ["raw", "raw frames"],
];

function renderDownloads(id) {
  const links = EXPORT_FORMATS.map(([format, label]) =>
    h("a", { href: `/sessions/${encodeURIComponent(id)}/export?format=${format}`, download: true, dataset: { format }, text: label }),
  );
  return h("p", { class: "downloads" }, "Download: ", links.flatMap((link, i) => (i ? [" · ", link] : [link])));
}

// The session page's summary (GET /sessions/{id}/summary): figures, then the top gifters (a
// VIEWER's without names: the API leaves them out).
function renderSummary(s) {
  if (s.summaryError) return h("section", { class: "session-summary" }, errorLine(s.summaryError));
  if (!s.summary) return null;
  return h(
    "section",
    { class: "session-summary" },
    h("h2", { text: "Summary" }),
    h("table", { class: "grid summary" }, h("tbody", {}, summaryRows(s.summary).map(([label, value]) => h("tr", { dataset: { figure: label } }, h("th", { text: label }), h("td", { text: value }))))),
    s.summary.topGifters.length
      ? [h("h3", { text: "Top gifters" }), h("ol", { class: "top-gifters plain-list" }, s.summary.topGifters.map((g) => h("li", { text: gifterLine(g) })))]
      : null,
  );
}

/** The session's events, oldest first, a gift streak as one entry (``foldHistory``): a
 * streak cut by the page boundary stays marked open and grows when "Load more" brings the rest. */
function renderSessionEvents(s, page) {
  return [
    h(
      "div",
      { class: "plain-list", id: "session-events" },
      s.entries.map((entry) => renderEvent(entry, null)),
      s.pageError ? errorLine(s.pageError) : null,
    ),
    h("button", { type: "button", class: "more", text: "Load more", hidden: !s.cursor, disabled: s.loading, onclick: page }),
  ];
}

// A VIEWER sees aggregates only (the API refuses it the events: handles and chat text).
const SUMMARY_ONLY = "A viewer account sees this summary; the events, with who sent them, are for moderators.";

export function mountSession(root, ctx) {
  const id = ctx.params[0];
  const life = lifetime();
  const named = ctx.app.may("MODERATOR"); // events, handles, chat text and downloads
  const state = { session: null, headError: "", summary: null, summaryError: "", events: [], entries: [], pageError: "", cursor: null, loading: false };
  const render = (s) => [
    h("h1", { text: `Session ${id}` }),
    h(
      "div",
      { class: "session-head" },
      s.headError ? errorLine(s.headError) : null,
      s.session ? sessionLines(s.session).map((line) => h("p", { text: line })) : null,
      s.session ? (coverageLines(s.session) ?? []).map((line) => h("p", { class: s.session.complete ? "coverage complete" : "coverage gap", text: line })) : null,
      s.session?.replayedFrom ? h("p", {}, "replay of ", h("a", { href: `#/session/${s.session.replayedFrom}`, text: s.session.replayedFrom })) : null,
      s.session && named ? renderDownloads(id) : null,
    ),
    renderSummary(s),
    named ? renderSessionEvents(s, page) : h("p", { class: "muted summary-only", text: SUMMARY_ONLY }),
  ];
  const update = bind(root, state, render);
  async function page() {
    update((s) => (s.loading = true));
    try {
      const res = await api(`/sessions/${id}/events${qs({ limit: 100, cursor: state.cursor })}`);
      if (!life.alive) return;
      update((s) => {
        s.events.push(...res.items);
        Object.assign(s, { entries: foldHistory(s.events), cursor: res.nextCursor, loading: false });
      });
    } catch (err) {
      if (life.alive) update((s) => Object.assign(s, { pageError: err.message, loading: false }));
    }
  }
  update();
  api(`/sessions/${id}`)
    .then((session) => life.alive && update((s) => (s.session = session)))
    .catch((err) => life.alive && update((s) => (s.headError = err.message)));
  api(`/sessions/${id}/summary`)
    .then((summary) => life.alive && update((s) => (s.summary = summary)))
    .catch((err) => life.alive && update((s) => (s.summaryError = err.message)));
  if (named) page();
  return { destroy: () => life.end() };
}

// -- moderator -----------------------------------------------------------------------------------
/** Mute 5 min / kick buttons with a result line (MODERATOR+; not rendered otherwise). A kick
 * asks for a second click. */
function renderQuickActions(s, act) {
  if (!s.mayModerate) return null;
  return h(
    "section",
    { class: "quick-actions" },
    h("h3", { text: "Quick actions" }),
    h(
      "div",
      { class: "buttons" },
      QUICK_ACTIONS.map((a) => {
        const armed = a.op === "kick" && s.kickArmed;
        return h("button", {
          type: "button",
          class: `quick ${a.cls}`,
          text: armed ? "Confirm kick" : a.label,
          dataset: armed ? { armed: "1" } : undefined,
          disabled: s.busy.has(a.op),
          onclick: () => act.quick(a.op),
        });
      }),
    ),
    h("p", {
      class: ["action-result", s.result?.ok === true ? "ok" : "", s.result?.ok === false ? "error" : ""].filter(Boolean).join(" "),
      role: "status",
      dataset: { user: s.user.userId },
      text: s.result?.text ?? "",
    }),
  );
}

function renderUser(s, act) {
  if (!s.userId) return h("p", { class: "muted", text: "Click a user in the feed (or Ctrl+K) to see their details." });
  if (s.error) return errorLine(s.error);
  if (!s.user) return h("p", { class: "muted", text: "Loading…" });
  const user = s.user;
  return [
    h(
      "header",
      { class: "user-head" },
      cdnImg(user.avatarUrl ?? s.fromFeed?.avatarUrl, "avatar big"),
      h("div", {}, h("h2", { class: "handle", text: `@${user.uniqueId}` }), h("p", { class: "display-name", text: user.displayName ?? "" })),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", { text: "id" }),
      h("dd", {}, h("code", { class: "user-id", text: user.userId }), " ", h("button", { type: "button", class: "copy-id", text: "Copy id", onclick: act.copyId })),
      h("dt", { text: "first seen" }),
      h("dd", { text: dateTime(user.firstSeen) }),
      h("dt", { text: "last seen" }),
      h("dd", { text: dateTime(user.lastSeen) }),
      h("dt", { text: "events" }),
      h("dd", { text: String(user.eventCount) }),
    ),
    renderQuickActions(s, act),
    h("h3", { text: "Notes" }),
    h(
      "form",
      { class: "note-form", onsubmit: act.saveNote },
      h("textarea", { name: "note", rows: 3, maxlength: 4000, placeholder: "Private note…", "aria-label": "Note", value: s.note, oninput: (e) => act.typeNote(e.target.value) }),
      h("button", { type: "submit", text: "Save note" }),
    ),
    h(
      "ul",
      { class: "notes", id: "notes" },
      s.notesError
        ? h("li", {}, errorLine(s.notesError))
        : s.notes.map((n) => h("li", {}, h("p", { text: n.body }), h("small", { text: `${n.author} · ${dateTime(n.createdAt)}` }))),
    ),
    h("h3", { text: "History" }),
    h(
      "div",
      { class: "plain-list", id: "user-history" },
      s.historyError ? errorLine(s.historyError) : s.historyEntries.map((entry) => renderEvent(entry, null)),
    ),
    h("button", { type: "button", class: "more", text: "Older", hidden: !s.cursor || Boolean(s.historyError), onclick: act.older }),
  ];
}

/** The state of the user panel for ``userId`` (null: none chosen). */
function userState(userId, fromFeed) {
  return {
    userId,
    fromFeed, // what the feed knew of the user, while the store may still be behind
    user: null,
    error: "",
    notes: [],
    notesError: "",
    note: "",
    history: [], // as loaded: newest first
    historyEntries: [], // folded: a gift streak one entry (foldHistory)
    historyError: "",
    cursor: null,
    kickArmed: false,
    busy: new Set(), // quick actions in flight
    result: null, // {ok, text} of the last quick action
  };
}

export function mountModerate(root, ctx) {
  const { app } = ctx;
  if (!app.feed) return waitingForStream(root);
  const life = lifetime();
  const panel = feedPanel(app.feed, { hidden: ["LIKE"], onUser: (u) => openUser(ctx, u) });
  const state = { mayModerate: app.may("MODERATOR"), ...userState(null, null) };
  const columns = h("div", { class: "columns" });
  patch(root, columns);
  const current = (userId) => life.alive && state.userId === userId;

  const loadNotes = async (userId) => {
    try {
      const notes = await api(`/users/${userId}/notes`);
      if (current(userId)) update((s) => Object.assign(s, { notes, notesError: "" }));
    } catch (err) {
      if (current(userId)) update((s) => (s.notesError = err.message));
    }
  };

  const loadHistory = async (userId) => {
    try {
      const res = await api(`/users/${userId}/events${qs({ limit: 50, cursor: state.cursor })}`);
      if (!current(userId)) return;
      update((s) => {
        s.history.push(...res.items);
        Object.assign(s, { historyEntries: foldHistory(s.history, { newestFirst: true }), cursor: res.nextCursor });
      });
    } catch (err) {
      if (current(userId)) update((s) => (s.historyError = err.message));
    }
  };

  const loadUser = async (userId) => {
    let user = null;
    // The store may be a moment behind the feed: a user just seen live can still be on the way.
    for (let attempt = 0; attempt < USER_RETRIES && current(userId); attempt += 1) {
      try {
        user = await api(`/users/${userId}`);
        break;
      } catch (err) {
        if (err.status !== 404) {
          if (current(userId)) update((s) => (s.error = err.message));
          return;
        }
        await new Promise((r) => setTimeout(r, USER_RETRY_MS));
      }
    }
    if (!current(userId)) return;
    const f = state.fromFeed;
    update((s) => (s.user = user ?? { userId, uniqueId: f?.uniqueId ?? "?", displayName: f?.displayName, eventCount: 0 }));
    loadNotes(userId);
    loadHistory(userId);
  };

  const act = {
    copyId: async () => {
      try {
        await navigator.clipboard.writeText(state.user.userId);
        toast(`Copied ${state.user.userId}`);
      } catch {
        toast("Copy failed: select the id and copy it");
      }
    },
    typeNote: (text) => update((s) => (s.note = text)),
    saveNote: async (e) => {
      e.preventDefault();
      const { userId, note } = state;
      if (!note.trim()) return;
      try {
        // A note belongs to the streamer it is written under: the one being watched.
        const body = app.stream ? { body: note, streamer: app.stream } : { body: note };
        await api(`/users/${userId}/notes`, { method: "POST", body });
        if (current(userId)) update((s) => (s.note = ""));
        toast("Note saved");
        loadNotes(userId);
      } catch (err) {
        toast(`Note not saved: ${err.message}`);
      }
    },
    older: () => loadHistory(state.userId),
    // The sheet (a phone) closes as the browser's back would: back to the feed it was opened
    // from; opened otherwise (a link, the palette), the view stays without a user.
    close: () => {
      if (!state.userId) return;
      if (history.state?.fromFeed) history.back();
      else location.replace("#/moderate");
    },
    quick: async (op) => {
      if (op === "kick" && !state.kickArmed) {
        update((s) => (s.kickArmed = true));
        return;
      }
      update((s) => {
        if (op === "kick") s.kickArmed = false;
        s.busy.add(op);
        s.result = { ok: null, text: "…" };
      });
      await moderateUser(app, state.user, op); // the outcome comes back through onModerated
      if (life.alive) update((s) => s.busy.delete(op));
    },
  };

  // Two columns on a desktop; on a phone the panel is a bottom sheet over the feed, open while
  // a user is chosen (the backdrop, its Close button, Escape and back close it).
  const update = bind(columns, state, (s) => [
    panel.el,
    h("div", { class: "sheet-backdrop", hidden: !s.userId, onclick: act.close }),
    h(
      "aside",
      { class: "user-panel", id: "user-panel", "aria-label": "Selected user", dataset: { open: s.userId ? "1" : "0" } },
      h("div", { class: "sheet-bar" }, h("button", { type: "button", class: "sheet-close", text: "Close", onclick: act.close })),
      renderUser(s, act),
    ),
  ]);
  const sheet = () => window.matchMedia(SHEET_MEDIA).matches;
  const onKey = (e) => {
    if (e.key !== "Escape" || e.defaultPrevented || !state.userId || !sheet()) return;
    if (document.querySelector("dialog[open]")) return; // Escape closes the palette first
    act.close();
  };
  document.addEventListener("keydown", onKey);
  const unwatch = onModerated((userId, result) => {
    if (life.alive && userId === state.userId) update((s) => (s.result = result));
  });
  const show = (params) => {
    const userId = params[0] ?? null;
    if (userId === state.userId) return;
    const wasOpen = Boolean(state.userId);
    update((s) => Object.assign(s, userState(userId, userId ? app.feed.users.get(userId) : null)));
    if (userId) loadUser(userId);
    if (!sheet()) return;
    // Focus follows the sheet: into it when it opens, back to the feed when it closes.
    if (userId) columns.querySelector(".sheet-close")?.focus();
    else if (wasOpen) panel.el.querySelector(".vlist")?.focus();
  };
  update();
  show(ctx.params);
  return {
    update: show,
    destroy() {
      life.end();
      unwatch();
      document.removeEventListener("keydown", onKey);
      panel.destroy();
    },
  };
}

// -- rules: list and editor (rules.js) ------------------------------------------------------------
export { mountRules } from "./rules.js";
