// The ticker's logic: the latest follows and gifts (or whichever kinds the options name: shares,
// subscriptions, chat, likes, joins, emotes), newest first. A gift streak is one item, added
// when it completes; banned words are masked as in the chat. No DOM here
// (tests/js/overlay-ticker.test.mjs); the scrolling is a CSS animation (views.js).

import { isCountedGift } from "./alerts.js";

/** An event as a ticker item ``{id, type, who, text, picture, source}``, or null when it is not one
 * (a type the ticker does not show, or a gift frame that does not complete a gift). ``mask``
 * hides banned words in names and chat text. */
export function tickerItem(ev, mask = (t) => t) {
  const u = ev?.user ?? {};
  const who = mask(u.displayName || (u.uniqueId ? `@${u.uniqueId}` : "someone"));
  const p = ev?.payload ?? {};
  const item = (text, picture = null) => ({ id: ev.eventId, type: ev.eventType, who, text, picture, source: ev.source });
  switch (ev?.eventType) {
    case "FOLLOW":
      return item("followed");
    case "SHARE":
      return item("shared");
    case "SUBSCRIBE":
      return item("subscribed");
    case "GIFT":
      if (!isCountedGift(p)) return null;
      return item(`${p.giftName || "gift"} ×${Number(p.giftCount) || 1}`, p.giftImageUrl ?? null);
    case "CHAT":
      return item(mask(String(p.message ?? "")));
    case "LIKE":
      return item(`liked ×${Number(p.likeCount) || 1}`);
    case "JOIN":
      return item("joined");
    case "EMOTE":
      return item("sent an emote", p.emoteImageUrl ?? null);
    default:
      return null;
  }
}

export class Ticker {
  constructor({ kinds = ["FOLLOW", "GIFT"], count = 10, mask } = {}) {
    this.items = []; // newest first
    this.configure({ kinds, count, mask });
  }

  configure({ kinds, count, mask = (t) => t }) {
    this.mask = mask;
    this.kinds = new Set(kinds ?? []);
    this.count = Math.max(1, Math.floor(Number(count) || 1));
    this.items = this.items.filter((x) => this.kinds.has(x.type)).slice(0, this.count);
  }

  /** Add an event; whether the items changed. */
  add(ev) {
    if (!this.kinds.has(ev?.eventType)) return false;
    const item = tickerItem(ev, this.mask);
    if (!item || this.items.some((x) => x.id === item.id)) return false;
    this.items.unshift(item);
    if (this.items.length > this.count) this.items.length = this.count;
    return true;
  }

  /** Start over from the server's recent events (oldest first). */
  reset(events) {
    this.items = [];
    for (const ev of events ?? []) this.add(ev);
  }
}

/** Seconds for ``distancePx`` at ``speedPxPerS`` (at least one second; a speed of 0 or less
 * means the slowest sensible speed, 10 px/s). */
export function scrollSeconds(distancePx, speedPxPerS) {
  const speed = Number(speedPxPerS) > 0 ? Number(speedPxPerS) : 10;
  return Math.max(1, distancePx / speed);
}

/** How many copies of a run of ``runPx`` fill ``viewPx`` and one more (the loop is seamless). */
export function copiesFor(runPx, viewPx) {
  if (!(runPx > 0)) return 1;
  return Math.min(20, Math.ceil(viewPx / runPx) + 1);
}
