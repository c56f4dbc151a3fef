// The live feed: an EventSource on /streams/{stream}/events folded into a feed log (feedlog.js:
// capped, gift streaks as one growing entry), and a virtualized list that paints only the rows
// in view, at most once per animation frame.

import { bind, cdnImg, h } from "./dom.js";
import { allChipsOn, CHIP_TYPES, FEED_CAP, feedFilter, foldEvent, isOpenStreak, newFeedLog, onlyChip, trimLog, visibleEntries } from "./feedlog.js";
import { badge, bodyText, chipLabel, countText, giftParts, hasUser, time, userTitle } from "./format.js";

export const ROW_HEIGHT = 40;
const RETRY_CLOSED_MS = 5000;
// A chip held this long shows only its type (a phone has no right-click; ten taps are too many).
const LONG_PRESS_MS = 500;

/** The feed of one stream: a feed log (``entries``, ``users``, ``received``, ``seq``) kept up
 * to date from the server, with a connection ``status`` and ``note``. */
export class LiveFeed {
  constructor(stream, { cap = FEED_CAP } = {}) {
    Object.assign(this, newFeedLog());
    this.stream = stream;
    this.cap = cap;
    this.pending = [];
    this.listeners = new Set();
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

  /** Fold what arrived since the last frame into the log; tell the views once. */
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
      foldEvent(this, ev);
    }
    trimLog(this, this.cap);
    this.notify();
  }

  notify() {
    for (const fn of this.listeners) fn(this);
  }
}

/** A list that renders only the rows in view (fixed row height), newest first. Its rows are
 * cached per entry and version: a new event paints a few rows, never the whole list. */
export class VirtualList {
  constructor(render, { rowHeight = ROW_HEIGHT, label = "Events" } = {}) {
    this.render = render;
    this.rowHeight = rowHeight;
    this.items = [];
    this.cache = new Map();
    this.spacer = h("div", { class: "vspacer" });
    this.rows = h("div", { class: "vrows" });
    this.el = h(
      "div",
      { class: "vlist", tabindex: "0", role: "list", "aria-label": label, key: "vlist", onscroll: () => this.schedule() },
      this.spacer,
      this.rows,
    );
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

function body(ev, entry) {
  const p = ev.payload || {};
  switch (ev.eventType) {
    case "CHAT":
      return h("span", { class: "body msg", text: bodyText(ev) });
    case "GIFT": {
      const gift = giftParts(p);
      return h(
        "span",
        { class: "body gift" },
        cdnImg(p.giftImageUrl, "gift-pic"),
        h("span", { class: "gift-name", text: gift.name }),
        h("span", { class: "gift-count", text: gift.count }),
        h("span", { class: "coins", text: gift.coins }),
        isOpenStreak(entry) ? h("span", { class: "streak", text: "streak…" }) : null,
      );
    }
    case "EMOTE":
      return h("span", { class: "body" }, cdnImg(p.emoteImageUrl, "emote-pic"), bodyText(ev));
    default:
      return h("span", { class: "body", text: bodyText(ev) });
  }
}

/** One event as a row; ``onUser(user)`` when its user is clicked (null: not clickable). */
export function renderEvent(entry, onUser) {
  const ev = entry.ev;
  const user = ev.user || {};
  const classes = ["row", `t-${ev.eventType}`];
  if (ev.source === "replay") classes.push("replay");
  const who = hasUser(user)
    ? h(
        onUser ? "button" : "span",
        { class: "user", type: onUser ? "button" : null, title: userTitle(user), onclick: onUser ? () => onUser(user) : null },
        cdnImg(user.avatarUrl, "avatar"),
        `@${user.uniqueId}`,
      )
    : null;
  return h(
    "div",
    { class: classes.join(" "), role: "listitem", dataset: { type: ev.eventType } },
    h("span", { class: "time", text: time(ev.timestamp) }),
    h("span", { class: "badge", text: badge(ev.eventType) }),
    who,
    body(ev, entry),
  );
}

/** The type chips: a click shows or hides a type; a long press (touch) or a right-click (the
 * context menu key, Shift+F10 from the keyboard) shows only that type, and so does the "only"
 * menu; "all" brings them all back. */
function renderChips(s, act) {
  return h(
    "div",
    { class: "chips", role: "group", "aria-label": "Event types" },
    CHIP_TYPES.map((type) => {
      const label = chipLabel(type);
      return h("button", {
        type: "button",
        class: "chip",
        "aria-pressed": String(s.types.has(type)),
        dataset: { chip: type },
        title: `${label}: show or hide · long-press or right-click: only ${label}`,
        text: label,
        onclick: (e) => act.click(type, e),
        onpointerdown: (e) => act.press(type, e),
        onpointerup: act.release,
        onpointerleave: act.release,
        onpointercancel: act.release,
        oncontextmenu: (e) => {
          e.preventDefault();
          act.only(type);
        },
      });
    }),
    h(
      "select",
      { class: "chip-only", "aria-label": "Show only one type", value: "", onchange: (e) => e.target.value && act.only(e.target.value) },
      h("option", { value: "", text: "only" }),
      CHIP_TYPES.map((type) => h("option", { value: type, text: chipLabel(type) })),
    ),
    h("button", { type: "button", class: "chip chip-all", title: "Show all types", "aria-label": "All types", text: "all", hidden: allChipsOn(s.types), onclick: act.all }),
  );
}

/** The panel's controls and counts from its state; the list is its own (kept) element. */
function renderPanel(s, list, act) {
  return [
    renderChips(s, act),
    h(
      "div",
      { class: "feed-tools" },
      h("input", { type: "search", class: "feed-search", placeholder: "Search text…", "aria-label": "Search", value: s.search, oninput: (e) => act.filter({ search: e.target.value }) }),
      h("input", { type: "search", class: "feed-user", placeholder: "@user or id", "aria-label": "User filter", value: s.user, oninput: (e) => act.filter({ user: e.target.value }) }),
      h("span", { class: "feed-count", id: "feed-count", text: countText(s.shown, s.received) }),
    ),
    list.el,
  ];
}

/** The feed with its filters (type chips, text search, user): used by the live and the
 * moderator views. ``hidden``: chips off at first. */
export function feedPanel(feed, { hidden = [], onUser = null } = {}) {
  const list = new VirtualList((entry) => renderEvent(entry, onUser), { label: "Live feed" });
  const el = h("section", { class: "feed", id: "feed", key: "feed" });
  const state = {
    types: new Set(CHIP_TYPES.filter((t) => !hidden.includes(t))), // chips on
    search: "",
    user: "",
    shown: 0,
    received: 0,
    lastSeq: 0, // the newest entry the list has had
  };
  // Re-filter the retained entries (not the DOM: the list paints only the rows in view).
  const refresh = (newOnly = false) => (s) => {
    const { items, added } = visibleEntries(feed.entries, feedFilter(s), newOnly ? s.lastSeq : Infinity);
    s.lastSeq = feed.seq;
    s.shown = items.length;
    s.received = feed.received;
    list.setItems(items, added);
  };
  const setTypes = (types) =>
    update((s) => {
      s.types = types;
      refresh()(s);
    });
  // A chip being held: its timer, and whether the hold already chose "only" (the click that
  // follows the release, if any, must not toggle it off again).
  const hold = { timer: 0, fired: false };
  const act = {
    click: (type, e) => {
      if (hold.fired && e.detail !== 0) return; // e.detail 0: Enter or Space, not the held pointer
      update((s) => {
        if (!s.types.delete(type)) s.types.add(type);
        refresh()(s);
      });
    },
    press: (type, e) => {
      clearTimeout(hold.timer);
      hold.fired = false;
      // A finger or a pen; a mouse has its right button (the context menu: act.only).
      if (e.pointerType === "mouse" || e.button !== 0) return;
      hold.timer = setTimeout(() => {
        hold.fired = true;
        act.only(type);
      }, LONG_PRESS_MS);
    },
    release: () => clearTimeout(hold.timer),
    only: (type) => setTypes(onlyChip(type)),
    all: () => setTypes(new Set(CHIP_TYPES)),
    filter: (change) =>
      update((s) => {
        Object.assign(s, change);
        refresh()(s);
      }),
  };
  const update = bind(el, state, (s) => renderPanel(s, list, act));
  const unsubscribe = feed.subscribe(() => update(refresh(true)));
  update(refresh());
  return {
    el,
    destroy() {
      clearTimeout(hold.timer);
      unsubscribe();
      list.destroy();
    },
  };
}
