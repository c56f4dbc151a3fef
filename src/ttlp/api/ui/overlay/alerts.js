// The alerts overlay's queue: follows, shares, subscriptions and gifts, one alert on screen at a
// time, each for ``durationMs``. No DOM here (tests/js/overlay-alerts.test.mjs); the view is
// in views.js. Time is passed in (``now``, ms), so the rules below are tested without
// waiting.
//
// - A gift streak (same session, user and giftId while ``streakActive``) is one alert: its
//   frames update it in place, queued or on screen, and ``streakEnd`` (the ingest sends it on a
//   timeout too) makes it final. A frame of a streak the ingest already closed (neither active
//   nor ended) is ignored, and so is any frame of a streak whose alert has been shown and gone.
// - ``minCoins``: a gift alert needs that many coins. A streak waits, unseen, until its running
//   total reaches the threshold (coins only grow, so its final total will too); one that ends
//   below it is dropped.
// - A streak still growing when its time is up stays on screen while frames keep coming (each
//   frame buys ``durationMs``), at most ``MAX_STREAK_FACTOR × durationMs`` in all; its final
//   count stays for at least ``FINAL_HOLD_MS``.
// - A streak whose alert is over is remembered until its end frame, or ``GONE_TTL_MS`` without a
//   frame (longer than the ingest's streak timeout; its end frame may have been missed while
//   the overlay reconnected), so the same user sending the same gift later is a new alert.
// - Between two alerts the screen is empty for ``GAP_MS``, so the next one reads as new.
// - The queue holds at most ``MAX_QUEUE`` alerts: in a burst the oldest follow or share gives
//   way first, then the oldest gift (an alert from minutes ago is no use on a stream).

import { DEFAULTS } from "./options.js";

export const MAX_QUEUE = 50;
export const MAX_STREAK_FACTOR = 3;
export const FINAL_HOLD_MS = 1500;
export const MAX_REMEMBERED = 2000;
export const GONE_TTL_MS = 20_000;
export const GAP_MS = 300;

const KIND_OF = { FOLLOW: "follow", SHARE: "share", SUBSCRIBE: "subscribe", GIFT: "gift" };

/** The alert kind of an event ("follow", "share", "subscribe", "gift"), or null. */
export function alertKind(ev) {
  return KIND_OF[ev?.eventType] ?? null;
}

/** Whether a GIFT frame completes a gift, so that totals count it once: a streak's end frame,
 * or a gift that is not part of a streak (the same rule as the server's analytics). */
export function isCountedGift(payload) {
  const p = payload ?? {};
  if (p.streakEnd !== undefined && p.streakEnd !== null) return Boolean(p.streakEnd);
  return !p.streakActive;
}

/** The key of a gift streak: one per session, user and gift. */
export function streakKey(ev) {
  return `${ev.sessionId}:${ev.user?.userId}:${ev.payload?.giftId}`;
}

function isStreakFrame(p) {
  return Boolean(p.isGiftStreak || p.streakActive);
}

/** A bounded insertion-ordered map (the oldest key is forgotten first). */
function remember(map, key, value) {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value);
}

let nextId = 0;

export class AlertQueue {
  constructor(options = DEFAULTS.alerts) {
    this.queue = []; // waiting alerts, oldest first
    this.current = null; // the alert on screen
    this.streaks = new Map(); // streak key → its alert (queued or on screen)
    this.held = new Map(); // streak key → an alert below minCoins, not queued yet
    this.gone = new Map(); // streak keys whose alert was shown and is over, still growing
    this.dropped = 0; // alerts that gave way in a burst
    this.readyAt = -Infinity; // no alert comes on screen before this (the gap after the last)
    this.configure(options);
  }

  configure(options) {
    this.options = options;
    this.queue = this.queue.filter((a) => this.enabled(a.kind));
    for (const [key, alert] of this.streaks) if (!this.enabled(alert.kind) && alert !== this.current) this.streaks.delete(key);
    if (!this.enabled("gift")) this.held.clear();
  }

  enabled(kind) {
    return Boolean(this.options.kinds?.[kind]);
  }

  get durationMs() {
    return Math.max(0, Number(this.options.durationMs) || 0);
  }

  /** Take one event; returns whether what is shown or queued changed. */
  offer(ev, now) {
    const kind = alertKind(ev);
    if (!kind || !this.enabled(kind)) return false;
    if (kind !== "gift") return this.enqueue(this.newAlert(kind, ev, now));
    const p = ev.payload ?? {};
    const minCoins = Number(this.options.minCoins) || 0;
    if (!isStreakFrame(p)) {
      if ((Number(p.coins) || 0) < minCoins) return false;
      return this.enqueue(this.newAlert(kind, ev, now, { final: true }));
    }
    const key = streakKey(ev);
    const final = Boolean(p.streakEnd);
    if (!p.streakActive && !final) return false; // a late frame of a streak already closed
    if (this.gone.has(key) && now - this.gone.get(key) < GONE_TTL_MS) {
      if (final) this.gone.delete(key);
      else remember(this.gone, key, now);
      return false;
    }
    this.gone.delete(key);
    const alert = this.streaks.get(key) ?? this.held.get(key);
    if (alert) {
      this.update(alert, ev, now, final);
      if (this.held.has(key)) return this.release(key, alert, minCoins);
      if (final && alert !== this.current) this.streaks.delete(key);
      return true;
    }
    const fresh = this.newAlert(kind, ev, now, { key, final });
    if (final) return (Number(p.coins) || 0) >= minCoins && this.enqueue(fresh);
    this.held.set(key, fresh);
    return this.release(key, fresh, minCoins);
  }

  /** A held streak goes into the queue once it has the coins; dropped when it ended short. */
  release(key, alert, minCoins) {
    if (alert.coins < minCoins) {
      if (alert.final) this.held.delete(key);
      else if (this.held.size > MAX_REMEMBERED) this.held.delete(this.held.keys().next().value);
      return false;
    }
    this.held.delete(key);
    if (!alert.final) this.streaks.set(key, alert);
    return this.enqueue(alert);
  }

  newAlert(kind, ev, now, { key = null, final = true } = {}) {
    nextId += 1;
    const p = ev.payload ?? {};
    return {
      id: nextId,
      kind,
      key,
      ev,
      count: Number(p.giftCount) || 1,
      coins: Number(p.coins) || 0,
      final,
      ver: 0,
      receivedAt: now,
      lastFrameAt: now,
      finalAt: final ? now : null,
      shownAt: null,
    };
  }

  update(alert, ev, now, final) {
    const p = ev.payload ?? {};
    alert.ev = ev;
    alert.count = Math.max(alert.count, Number(p.giftCount) || 1);
    alert.coins = Math.max(alert.coins, Number(p.coins) || 0);
    alert.lastFrameAt = now;
    alert.ver += 1;
    if (final && !alert.final) {
      alert.final = true;
      alert.finalAt = now;
    }
  }

  enqueue(alert) {
    this.queue.push(alert);
    while (this.queue.length > MAX_QUEUE) {
      let i = this.queue.findIndex((a) => a.kind === "follow" || a.kind === "share");
      if (i < 0) i = 0;
      const [out] = this.queue.splice(i, 1);
      if (out.key) this.streaks.delete(out.key);
      if (out.key && !out.final) remember(this.gone, out.key, out.lastFrameAt);
      this.dropped += 1;
    }
    return true;
  }

  /** When the alert on screen is due to go (ms), or null when none is shown. */
  endsAt(alert = this.current) {
    if (!alert) return null;
    const d = this.durationMs;
    const base = alert.shownAt + d;
    if (!alert.key) return base;
    if (alert.final) return Math.max(base, alert.finalAt + Math.min(FINAL_HOLD_MS, d));
    return Math.min(Math.max(base, alert.lastFrameAt + d), alert.shownAt + MAX_STREAK_FACTOR * d);
  }

  /** Move on at ``now``: the alert whose time is up goes, the next one comes. Returns
   * ``{shown, ended}``: the alert that came on screen, the one that went (or null). */
  tick(now) {
    let ended = null;
    if (this.current && now >= this.endsAt()) {
      ended = this.finish(now);
    }
    let shown = null;
    if (!this.current && this.queue.length && now >= this.readyAt) {
      shown = this.queue.shift();
      shown.shownAt = now;
      this.current = shown;
    }
    return { shown, ended };
  }

  /** End the alert on screen at ``now`` (the skip key, a skip from the UI); the next comes
   * after the gap. Returns the alert that went, or null. */
  skip(now) {
    return this.current ? this.finish(now) : null;
  }

  finish(now) {
    const done = this.current;
    this.current = null;
    this.readyAt = now + GAP_MS;
    if (done.key) {
      this.streaks.delete(done.key);
      if (!done.final) remember(this.gone, done.key, done.lastFrameAt);
    }
    return done;
  }

  /** Milliseconds until ``tick`` has something to do, or null when nothing waits. */
  nextDelay(now) {
    if (this.current) return Math.max(0, this.endsAt() - now);
    return this.queue.length ? Math.max(0, this.readyAt - now) : null;
  }

  clear() {
    this.queue = [];
    this.current = null;
    this.streaks.clear();
    this.held.clear();
    this.gone.clear();
  }
}

function name(user) {
  return user?.displayName || (user?.uniqueId ? `@${user.uniqueId}` : "someone");
}

/** What an alert says: ``{who, what, handle}``; the view and the speech both use it. */
export function alertText(alert) {
  const ev = alert.ev;
  const p = ev.payload ?? {};
  const who = name(ev.user);
  const handle = ev.user?.uniqueId ? `@${ev.user.uniqueId}` : "";
  switch (alert.kind) {
    case "follow":
      return { who, handle, what: "followed" };
    case "share":
      return { who, handle, what: "shared the LIVE" };
    case "subscribe":
      return { who, handle, what: Number(p.subMonth) > 1 ? `subscribed (month ${p.subMonth})` : "subscribed" };
    default:
      return { who, handle, what: `sent ${p.giftName || "a gift"} ×${alert.count}` };
  }
}

/** The sentence to speak for an alert. */
export function alertSpeech(alert) {
  const ev = alert.ev;
  const p = ev.payload ?? {};
  const who = ev.user?.displayName || ev.user?.uniqueId || "someone";
  switch (alert.kind) {
    case "follow":
      return `${who} followed`;
    case "share":
      return `${who} shared the live`;
    case "subscribe":
      return `${who} subscribed`;
    default:
      return `${who} sent ${alert.count} ${p.giftName || "gifts"}`;
  }
}
