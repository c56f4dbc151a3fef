// The live feed: an EventSource on /streams/{stream}/events, events kept in memory (capped),
// gift streaks folded into one growing entry, and a virtualized list that paints only the
// rows in view, at most once per animation frame.

import { cdnImg, h, time } from "./dom.js";

export const FEED_CAP = 5000;
export const ROW_HEIGHT = 40;
const RECENT_USERS = 500;
const RETRY_CLOSED_MS = 5000;

/** Event types with a chip of their own; the rest (lifecycle, RAW) share "SYSTEM". */
export const CHIP_TYPES = [
  "CHAT", "GIFT", "LIKE", "JOIN", "FOLLOW", "SHARE", "SUBSCRIBE", "EMOTE", "BATTLE", "ROOM_USER", "SYSTEM",
];
const SYSTEM_TYPES = new Set(["CONNECTED", "DISCONNECTED", "ERROR", "STREAM_END", "RAW"]);

export function chipOf(eventType) {
  return SYSTEM_TYPES.has(eventType) ? "SYSTEM" : eventType;
}

export class LiveFeed {
  constructor(stream, { cap = FEED_CAP } = {}) {
    this.stream = stream;
    this.cap = cap;
    this.entries = []; // oldest first; entry = {seq, ev, ver, streakKey?}
    this.streaks = new Map(); // open streak key → its entry
    this.users = new Map(); // userId → user, most recent last
    this.pending = [];
    this.listeners = new Set();
    this.received = 0;
    this.seq = 0;
    this.status = "connecting";
    this.note = "";
    this.frame = 0;
    this.closed = false;
  }

  start() {
    const es = new EventSource(`/streams/@${this.stream}/events`);
    es.addEventListener("event", (m) => {
      this.pending.push(m.data);
      this.schedule();
    });
    es.addEventListener("gap", () => this.setStatus("live", "some events were trimmed while away"));
    es.addEventListener("dropped", () => this.setStatus("reconnecting", "too slow: the server dropped the feed"));
    es.addEventListener("open", () => this.setStatus("live"));
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED && !this.closed) {
        // Refused (403/429): EventSource gives up; try again later with a fresh one.
        this.setStatus("offline", "feed refused; retrying");
        this.retry = setTimeout(() => this.start(), RETRY_CLOSED_MS);
      } else {
        this.setStatus("reconnecting"); // EventSource resumes by itself with Last-Event-ID
      }
    });
    this.es = es;
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.frame) cancelAnimationFrame(this.frame);
    this.es?.close();
    this.listeners.clear();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  setStatus(status, note = "") {
    this.status = status;
    this.note = note;
    this.notify();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** Fold what arrived since the last frame into the entries; tell the views once. */
  flush() {
    this.frame = 0;
    const batch = this.pending;
    this.pending = [];
    for (const data of batch) {
      let ev;
      try {
        ev = JSON.parse(data);
      } catch {
        continue;
      }
      this.add(ev);
    }
    const excess = this.entries.length - this.cap;
    if (excess > 0) {
      for (const old of this.entries.splice(0, excess)) {
        if (old.streakKey && this.streaks.get(old.streakKey) === old) this.streaks.delete(old.streakKey);
      }
    }
    this.notify();
  }

  notify() {
    for (const fn of this.listeners) fn(this);
  }

  add(ev) {
    this.received += 1;
    const user = ev.user || {};
    if (user.userId && user.userId !== "0") {
      this.users.delete(user.userId);
      this.users.set(user.userId, user);
      if (this.users.size > RECENT_USERS) this.users.delete(this.users.keys().next().value);
    }
    const p = ev.payload || {};
    if (ev.eventType === "GIFT" && p.isGiftStreak) {
      // One entry per streak (user + gift in a session), updated until its end frame.
      const key = `${ev.sessionId}:${user.userId}:${p.giftId}`;
      const open = this.streaks.get(key);
      if (open) {
        open.ev = ev;
        open.ver += 1;
        if (p.streakEnd) this.streaks.delete(key);
        return;
      }
      const entry = { seq: ++this.seq, ev, ver: 0, streakKey: key };
      this.entries.push(entry);
      if (!p.streakEnd) this.streaks.set(key, entry);
      return;
    }
    this.entries.push({ seq: ++this.seq, ev, ver: 0 });
  }
}

/** A list that renders only the rows in view (fixed row height), newest first. */
export class VirtualList {
  constructor(render, { rowHeight = ROW_HEIGHT, label = "Events" } = {}) {
    this.render = render;
    this.rowHeight = rowHeight;
    this.items = [];
    this.cache = new Map();
    this.spacer = h("div", { class: "vspacer" });
    this.rows = h("div", { class: "vrows" });
    this.el = h("div", { class: "vlist", tabindex: "0", role: "list", "aria-label": label }, this.spacer, this.rows);
    this.el.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.resize = new ResizeObserver(() => this.schedule());
    this.resize.observe(this.el);
    this.frame = 0;
  }

  /** New items (newest first); ``added`` rows came in at the top: keep a scrolled view still. */
  setItems(items, added = 0) {
    this.items = items;
    if (added > 0 && this.el.scrollTop > 0) this.el.scrollTop += added * this.rowHeight;
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.paint());
  }

  paint() {
    this.frame = 0;
    const size = this.rowHeight;
    const count = this.items.length;
    this.spacer.style.height = `${count * size}px`;
    const top = this.el.scrollTop;
    const first = Math.max(0, Math.floor(top / size) - 4);
    const last = Math.min(count, Math.ceil((top + this.el.clientHeight) / size) + 4);
    const kept = new Map();
    const nodes = [];
    for (let i = first; i < last; i += 1) {
      const item = this.items[i];
      let row = this.cache.get(item);
      if (!row || row.ver !== item.ver) row = { ver: item.ver, el: this.render(item) };
      row.el.style.transform = `translateY(${i * size}px)`;
      kept.set(item, row);
      nodes.push(row.el);
    }
    this.cache = kept;
    this.rows.replaceChildren(...nodes);
  }

  destroy() {
    this.resize.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}

const LABELS = {
  CHAT: "chat", GIFT: "gift", LIKE: "like", JOIN: "join", FOLLOW: "follow", SHARE: "share",
  SUBSCRIBE: "sub", EMOTE: "emote", BATTLE: "battle", ROOM_USER: "viewers", CONNECTED: "connected",
  DISCONNECTED: "disconnected", ERROR: "error", STREAM_END: "end", RAW: "raw",
};

function body(ev, entry) {
  const p = ev.payload || {};
  switch (ev.eventType) {
    case "CHAT":
      return h("span", { class: "body msg", text: p.message ?? "" });
    case "GIFT": {
      const open = Boolean(entry?.streakKey) && !p.streakEnd;
      return h(
        "span",
        { class: "body gift" },
        cdnImg(p.giftImageUrl, "gift-pic"),
        h("span", { class: "gift-name", text: p.giftName || `gift ${p.giftId}` }),
        h("span", { class: "gift-count", text: `×${p.giftCount ?? 1}` }),
        h("span", { class: "coins", text: `${p.coins ?? 0} coins` }),
        open ? h("span", { class: "streak", text: "streak…" }) : null,
      );
    }
    case "LIKE":
      return h("span", { class: "body", text: `+${p.likeCount ?? 0} likes (total ${p.totalLikeCount ?? "?"})` });
    case "JOIN":
      return h("span", { class: "body", text: "joined" });
    case "FOLLOW":
      return h("span", { class: "body", text: "followed" });
    case "SHARE":
      return h("span", { class: "body", text: "shared the stream" });
    case "SUBSCRIBE":
      return h("span", { class: "body", text: p.subMonth ? `subscribed (month ${p.subMonth})` : "subscribed" });
    case "EMOTE":
      return h("span", { class: "body" }, cdnImg(p.emoteImageUrl, "emote-pic"), "sent an emote");
    case "BATTLE": {
      const who = (p.participants || []).map((x) => `@${x.uniqueId ?? x.userId}${x.score != null ? ` ${x.score}` : ""}`);
      return h("span", { class: "body", text: `${p.battleStatus ?? ""} ${who.join(" vs ")}` });
    }
    case "ROOM_USER":
      return h("span", { class: "body", text: `${p.viewerCount ?? "?"} watching (${p.totalViewers ?? "?"} total)` });
    case "CONNECTED":
      return h("span", { class: "body", text: `connected via ${p.provider ?? "?"}` });
    case "DISCONNECTED":
      return h("span", { class: "body", text: `disconnected: ${p.reason ?? p.code ?? ""}` });
    case "ERROR":
      return h("span", { class: "body", text: `${p.code ?? "error"}: ${p.message ?? ""}` });
    case "STREAM_END":
      return h("span", { class: "body", text: `stream ended ${p.reason ?? ""}` });
    case "RAW":
      return h("span", { class: "body", text: p.rawType ?? "raw" });
    default:
      return h("span", { class: "body", text: ev.eventType });
  }
}

/** One event as a row; ``onUser(user)`` when its user is clicked (null: not clickable). */
export function renderEvent(entry, onUser) {
  const ev = entry.ev;
  const user = ev.user || {};
  const classes = ["row", `t-${ev.eventType}`];
  if (ev.source === "replay") classes.push("replay");
  const who =
    user.userId && user.userId !== "0"
      ? h(
          onUser ? "button" : "span",
          {
            class: "user",
            type: onUser ? "button" : null,
            title: user.displayName ? `${user.displayName} (${user.userId})` : user.userId,
            onclick: onUser ? () => onUser(user) : null,
          },
          cdnImg(user.avatarUrl, "avatar"),
          `@${user.uniqueId}`,
        )
      : null;
  return h(
    "div",
    { class: classes.join(" "), role: "listitem", dataset: { type: ev.eventType } },
    h("span", { class: "time", text: time(ev.timestamp) }),
    h("span", { class: "badge", text: LABELS[ev.eventType] ?? ev.eventType }),
    who,
    body(ev, entry),
  );
}

function matches(ev, filter) {
  if (!filter.types.has(chipOf(ev.eventType))) return false;
  const user = ev.user || {};
  if (filter.user) {
    const u = filter.user;
    if ((user.uniqueId || "").toLowerCase() !== u && user.userId !== u) return false;
  }
  if (filter.q) {
    const p = ev.payload || {};
    const text = `${p.message ?? ""} ${p.giftName ?? ""} ${user.uniqueId ?? ""} ${user.displayName ?? ""}`;
    if (!text.toLowerCase().includes(filter.q)) return false;
  }
  return true;
}

/** The feed with its filters (type chips, text search, user): used by the live and the
 * moderator views. ``hidden``: chips off at first. */
export function feedPanel(feed, { hidden = [], onUser = null } = {}) {
  const filter = { types: new Set(CHIP_TYPES.filter((t) => !hidden.includes(t))), q: "", user: "" };
  const list = new VirtualList((entry) => renderEvent(entry, onUser), { label: "Live feed" });
  const count = h("span", { class: "feed-count", id: "feed-count" });
  let shown = [];
  let lastSeq = 0;

  const refresh = (newOnly = false) => {
    const items = [];
    let added = 0;
    for (let i = feed.entries.length - 1; i >= 0; i -= 1) {
      const entry = feed.entries[i];
      if (!matches(entry.ev, filter)) continue;
      items.push(entry);
      if (newOnly && entry.seq > lastSeq) added += 1;
    }
    lastSeq = feed.seq;
    shown = items;
    list.setItems(items, added);
    count.textContent = `${shown.length} shown · ${feed.received} received`;
  };

  const chips = CHIP_TYPES.map((type) => {
    const chip = h("button", {
      type: "button",
      class: "chip",
      "aria-pressed": String(filter.types.has(type)),
      dataset: { chip: type },
      text: type.toLowerCase().replace("_", " "),
    });
    chip.addEventListener("click", () => {
      if (filter.types.has(type)) filter.types.delete(type);
      else filter.types.add(type);
      chip.setAttribute("aria-pressed", String(filter.types.has(type)));
      refresh();
    });
    return chip;
  });
  const search = h("input", { type: "search", class: "feed-search", placeholder: "Search text…", "aria-label": "Search" });
  search.addEventListener("input", () => {
    filter.q = search.value.trim().toLowerCase();
    refresh();
  });
  const userBox = h("input", { type: "search", class: "feed-user", placeholder: "@user or id", "aria-label": "User filter" });
  userBox.addEventListener("input", () => {
    filter.user = userBox.value.trim().replace(/^@/, "").toLowerCase();
    refresh();
  });

  const el = h(
    "section",
    { class: "feed", id: "feed" },
    h("div", { class: "chips" }, chips),
    h("div", { class: "feed-tools" }, search, userBox, count),
    list.el,
  );
  const unsubscribe = feed.subscribe(() => refresh(true));
  refresh();
  return {
    el,
    destroy() {
      unsubscribe();
      list.destroy();
    },
  };
}
