// The views. Each ``mount(root, ctx)`` fills ``root`` and returns an object with ``destroy()``
// and, optionally, ``update(params)`` (same view, other parameters: no remount).

import { moderateUser, QUICK_ACTIONS } from "./actions.js";
import { api, qs } from "./api.js";
import { barChart, series } from "./charts.js";
import { cdnImg, dateTime, h, toast } from "./dom.js";
import { feedPanel, renderEvent } from "./feed.js";

const ANALYTICS_REFRESH_MS = 15000;
const PROGRESS_POLL_MS = 1000;
const PROGRESS_MAX_POLLS = 180;

function waitingForStream(root) {
  root.replaceChildren(h("p", { class: "muted", text: "No stream yet: waiting for the first broadcast…" }));
  return { destroy() {} };
}

function errorLine(err) {
  return h("p", { class: "error", text: `Could not load: ${err.message}` });
}

// -- live dashboard ------------------------------------------------------------------------------
export function mountLive(root, ctx) {
  const { app } = ctx;
  if (!app.feed) return waitingForStream(root);
  const panel = feedPanel(app.feed, { onUser: (u) => ctx.navigate(`moderate/${u.userId}`) });
  const overview = h("aside", { class: "overview", id: "overview" });
  root.replaceChildren(h("div", { class: "dashboard" }, panel.el, overview));
  const load = () => analyticsInto(overview, app, { compact: true });
  load();
  const timer = setInterval(load, ANALYTICS_REFRESH_MS);
  return {
    destroy() {
      clearInterval(timer);
      panel.destroy();
    },
  };
}

// -- analytics -----------------------------------------------------------------------------------
async function analyticsInto(box, app, { compact = false, sessionId = "", bucket = 60, since = "", until = "" } = {}) {
  const params = sessionId ? { sessionId, bucket } : { streamId: `@${app.stream}`, bucket };
  // datetime-local values are local times: send them as UTC instants.
  if (since) params.since = new Date(since).toISOString();
  if (until) params.until = new Date(until).toISOString();
  let result;
  try {
    result = await api(`/analytics${qs(params)}`);
  } catch (err) {
    box.replaceChildren(errorLine(err));
    return;
  }
  const { events, coins } = series(result, compact ? 60 : 720);
  const unit = bucket === 60 ? "min" : `${bucket}s`;
  const totalEvents = Object.values(result.totals).reduce((a, x) => a + x, 0);
  const person = (row) => (row.uniqueId ? `@${row.uniqueId}` : "(hidden)");
  box.replaceChildren(
    h(
      "div",
      { class: "stats" },
      stat("events", totalEvents),
      stat("coins", result.coins),
      stat("unique users", result.uniqueUsers),
      stat("peak viewers", result.peakViewers ?? "—"),
    ),
    barChart(`Events / ${unit}`, events, "events"),
    barChart(`Coins / ${unit}`, coins, "coins"),
    h(
      "div",
      { class: "tops" },
      table("Top gifters", ["who", "coins", "gifts"], result.topGifters.map((r) => [person(r), r.coins, r.gifts])),
      table("Top chatters", ["who", "messages"], result.topChatters.map((r) => [person(r), r.messages])),
    ),
  );
  if (!compact) {
    box.append(table("Events by type", ["type", "count"], Object.entries(result.totals).sort((a, b) => b[1] - a[1])));
  }
}

function stat(label, value) {
  return h("div", { class: "stat" }, h("strong", { text: String(value) }), h("span", { text: label }));
}

function table(title, heads, rows) {
  return h(
    "table",
    { class: "grid" },
    h("caption", { text: title }),
    h("thead", {}, h("tr", {}, heads.map((x) => h("th", { text: x })))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((c) => h("td", { text: String(c) })))) : h("tr", {}, h("td", { colspan: heads.length, class: "muted", text: "none yet" }))),
  );
}

export function mountAnalytics(root, ctx) {
  const { app } = ctx;
  if (!app.stream) return waitingForStream(root);
  const box = h("div", { class: "analytics" });
  const bucket = h(
    "select",
    { "aria-label": "Bucket" },
    h("option", { value: "60", text: "per minute" }),
    h("option", { value: "300", text: "per 5 minutes" }),
    h("option", { value: "3600", text: "per hour" }),
  );
  const session = h("select", { "aria-label": "Session" }, h("option", { value: "", text: `all of @${app.stream}` }));
  const since = h("input", { type: "datetime-local", "aria-label": "From" });
  const until = h("input", { type: "datetime-local", "aria-label": "To" });
  const load = () =>
    analyticsInto(box, app, {
      sessionId: session.value,
      bucket: Number(bucket.value),
      since: since.value,
      until: until.value,
    });
  for (const control of [bucket, session, since, until]) control.addEventListener("change", load);
  api(`/streams/@${app.stream}/sessions?limit=50`)
    .then((rows) => session.append(...rows.map((s) => h("option", { value: s.id, text: `${dateTime(s.createdAt)} · ${s.type}` }))))
    .catch(() => {});
  root.replaceChildren(
    h("h1", { text: "Analytics" }),
    h("div", { class: "toolbar" }, session, bucket, h("label", { text: "from" }), since, h("label", { text: "to" }), until),
    box,
  );
  load();
  return { destroy() {} };
}

// -- sessions ------------------------------------------------------------------------------------
export function mountSessions(root, ctx) {
  const { app } = ctx;
  if (!app.stream) return waitingForStream(root);
  const body = h("tbody");
  const progress = new Map(); // source id → progress element, kept across reloads
  const timers = new Set();
  const canReplay = app.may("STREAMER");

  const load = async () => {
    let rows;
    try {
      rows = await api(`/streams/@${app.stream}/sessions?limit=100`);
    } catch (err) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 6 }, errorLine(err))));
      return;
    }
    body.replaceChildren(
      ...rows.map((s) =>
        h(
          "tr",
          { dataset: { session: s.id } },
          h("td", {}, h("a", { href: `#/session/${s.id}`, text: s.id.slice(0, 8) })),
          h("td", { text: s.type }),
          h("td", { text: dateTime(s.createdAt) }),
          h("td", { text: dateTime(s.endedAt) }),
          h("td", {}, s.replayedFrom ? h("a", { href: `#/session/${s.replayedFrom}`, class: "replayed-from", text: s.replayedFrom.slice(0, 8) }) : "—"),
          h(
            "td",
            {},
            canReplay ? h("button", { type: "button", class: "replay", onclick: () => replay(s.id) , text: "Replay" }) : null,
            progress.get(s.id) ?? null,
          ),
        ),
      ),
    );
  };

  const replay = async (sourceId) => {
    const line = h("span", { class: "progress", text: "requested…" });
    progress.set(sourceId, line);
    load();
    let accepted;
    let total = null;
    try {
      accepted = await api(`/sessions/${sourceId}/replay`, { method: "POST" });
      total = (await api(`/sessions/${sourceId}`)).eventCount;
    } catch (err) {
      line.textContent = `failed: ${err.message}`;
      return;
    }
    let polls = 0;
    let seen = false;
    const poll = async () => {
      polls += 1;
      try {
        const s = await api(`/sessions/${accepted.sessionId}`);
        line.textContent = `replaying: ${s.eventCount} / ${total ?? "?"} events`;
        if (!seen) {
          seen = true;
          load(); // the new session is a row now
        }
        if (total !== null && s.eventCount >= total) {
          line.textContent = `replayed: ${s.eventCount} events`;
          line.classList.add("done");
          load();
          return;
        }
      } catch {
        line.textContent = "queued…"; // not stored yet
      }
      if (polls < PROGRESS_MAX_POLLS) {
        const t = setTimeout(poll, PROGRESS_POLL_MS);
        timers.add(t);
      }
    };
    poll();
  };

  root.replaceChildren(
    h("h1", { text: `Sessions of @${app.stream}` }),
    h(
      "table",
      { class: "grid sessions" },
      h("thead", {}, h("tr", {}, ["session", "type", "started", "ended", "replay of", ""].map((x) => h("th", { text: x })))),
      body,
    ),
  );
  load();
  return {
    destroy() {
      for (const t of timers) clearTimeout(t);
    },
  };
}

export function mountSession(root, ctx) {
  const id = ctx.params[0];
  const list = h("div", { class: "plain-list", id: "session-events" });
  const more = h("button", { type: "button", class: "more", text: "Load more" });
  const head = h("div", { class: "session-head" });
  let cursor = null;
  const page = async () => {
    more.disabled = true;
    try {
      const res = await api(`/sessions/${id}/events${qs({ limit: 100, cursor })}`);
      list.append(...res.items.map((ev) => renderEvent({ ev, ver: 0 }, null)));
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      list.append(errorLine(err));
    }
    more.disabled = false;
  };
  more.addEventListener("click", page);
  api(`/sessions/${id}`)
    .then((s) =>
      head.replaceChildren(
        h("p", { text: `@${s.uniqueId ?? "?"} · ${s.type} · ${s.provider ?? ""} · ${s.eventCount} events` }),
        h("p", { text: `started ${dateTime(s.createdAt)} · ended ${dateTime(s.endedAt)}` }),
        s.replayedFrom ? h("p", {}, "replay of ", h("a", { href: `#/session/${s.replayedFrom}`, text: s.replayedFrom })) : null,
      ),
    )
    .catch((err) => head.replaceChildren(errorLine(err)));
  root.replaceChildren(h("h1", { text: `Session ${id}` }), head, list, more);
  page();
  return { destroy() {} };
}

// -- moderator -----------------------------------------------------------------------------------
export function mountModerate(root, ctx) {
  const { app } = ctx;
  if (!app.feed) return waitingForStream(root);
  const panel = feedPanel(app.feed, { hidden: ["LIKE"], onUser: (u) => ctx.navigate(`moderate/${u.userId}`) });
  const side = h("aside", { class: "user-panel", id: "user-panel" });
  root.replaceChildren(h("div", { class: "columns" }, panel.el, side));
  let shown = null;
  const update = (params) => {
    const userId = params[0];
    if (userId === shown) return;
    shown = userId;
    if (!userId) side.replaceChildren(h("p", { class: "muted", text: "Click a user in the feed (or Ctrl+K) to see their details." }));
    else userDetails(side, userId, app.feed.users.get(userId), () => shown === userId, app);
  };
  update(ctx.params);
  return { update, destroy: () => panel.destroy() };
}

/** Mute 5 min / kick buttons with a result line (MODERATOR+; not rendered otherwise). A kick
 * asks for a second click. */
function quickActions(app, user) {
  if (!app.may("MODERATOR")) return null;
  const result = h("p", { class: "action-result", role: "status", dataset: { user: user.userId } });
  const buttons = QUICK_ACTIONS.map((a) => {
    const button = h("button", { type: "button", class: `quick ${a.cls}`, text: a.label });
    button.addEventListener("click", async () => {
      if (a.op === "kick" && button.dataset.armed !== "1") {
        button.dataset.armed = "1";
        button.textContent = "Confirm kick";
        return;
      }
      button.dataset.armed = "";
      button.textContent = a.label;
      button.disabled = true;
      result.textContent = "…";
      result.classList.remove("error", "ok");
      await moderateUser(app, user, a.op);
      button.disabled = false;
    });
    return button;
  });
  return h("section", { class: "quick-actions" }, h("h3", { text: "Quick actions" }), h("div", { class: "buttons" }, buttons), result);
}

async function userDetails(side, userId, fromFeed, current, app) {
  side.replaceChildren(h("p", { class: "muted", text: "Loading…" }));
  let user = null;
  // The store may be a moment behind the feed: a user just seen live can still be on the way.
  for (let attempt = 0; attempt < 5 && current(); attempt += 1) {
    try {
      user = await api(`/users/${userId}`);
      break;
    } catch (err) {
      if (err.status !== 404) {
        side.replaceChildren(errorLine(err));
        return;
      }
      await new Promise((r) => setTimeout(r, 700));
    }
  }
  if (!current()) return;
  user = user ?? { userId, uniqueId: fromFeed?.uniqueId ?? "?", displayName: fromFeed?.displayName, eventCount: 0 };
  const copy = h("button", { type: "button", class: "copy-id", text: "Copy id" });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(user.userId);
      toast(`Copied ${user.userId}`);
    } catch {
      toast("Copy failed: select the id and copy it");
    }
  });
  const history = h("div", { class: "plain-list", id: "user-history" });
  const more = h("button", { type: "button", class: "more", text: "Older" });
  let cursor = null;
  const page = async () => {
    try {
      const res = await api(`/users/${userId}/events${qs({ limit: 50, cursor })}`);
      history.append(...res.items.map((ev) => renderEvent({ ev, ver: 0 }, null)));
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      history.replaceChildren(errorLine(err));
      more.hidden = true;
    }
  };
  more.addEventListener("click", page);
  const notes = h("ul", { class: "notes", id: "notes" });
  const loadNotes = async () => {
    try {
      const rows = await api(`/users/${userId}/notes`);
      notes.replaceChildren(
        ...rows.map((n) => h("li", {}, h("p", { text: n.body }), h("small", { text: `${n.author} · ${dateTime(n.createdAt)}` }))),
      );
    } catch (err) {
      notes.replaceChildren(h("li", {}, errorLine(err)));
    }
  };
  const text = h("textarea", { name: "note", rows: 3, maxlength: 4000, placeholder: "Private note…", "aria-label": "Note" });
  const form = h("form", { class: "note-form" }, text, h("button", { type: "submit", text: "Save note" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!text.value.trim()) return;
    try {
      await api(`/users/${userId}/notes`, { method: "POST", body: { body: text.value } });
      text.value = "";
      toast("Note saved");
      loadNotes();
    } catch (err) {
      toast(`Note not saved: ${err.message}`);
    }
  });
  side.replaceChildren(
    h(
      "header",
      { class: "user-head" },
      cdnImg(user.avatarUrl ?? fromFeed?.avatarUrl, "avatar big"),
      h("div", {}, h("h2", { class: "handle", text: `@${user.uniqueId}` }), h("p", { class: "display-name", text: user.displayName ?? "" })),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", { text: "id" }),
      h("dd", {}, h("code", { class: "user-id", text: user.userId }), " ", copy),
      h("dt", { text: "first seen" }),
      h("dd", { text: dateTime(user.firstSeen) }),
      h("dt", { text: "last seen" }),
      h("dd", { text: dateTime(user.lastSeen) }),
      h("dt", { text: "events" }),
      h("dd", { text: String(user.eventCount) }),
    ),
    quickActions(app, user),
    h("h3", { text: "Notes" }),
    form,
    notes,
    h("h3", { text: "History" }),
    history,
    more,
  );
  loadNotes();
  page();
}

// -- rules: list and editor (rules.js) ------------------------------------------------------------
export { mountRules } from "./rules.js";
