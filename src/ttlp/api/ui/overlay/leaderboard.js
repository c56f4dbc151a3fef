// The leaderboard: top gifters from GET /overlay/state, then kept up to date from the feed. A
// gift streak counts once, on the frame that completes it (its end, or a gift outside any
// streak), as the server counts it. No DOM here (tests/js/overlay-tally.test.mjs).

import { isCountedGift } from "./alerts.js";

export const MAX_GIFTERS = 10_000;

/** Coins, gifts sent and who: one row per TikTok user. */
export class Leaderboard {
  constructor() {
    this.rows = new Map();
  }

  /** Start over from the server's rows ``[{userId, uniqueId, displayName, avatarUrl, coins, gifts}]``. */
  load(rows) {
    this.rows = new Map();
    for (const r of rows ?? []) {
      if (r?.userId) this.rows.set(r.userId, { userId: r.userId, uniqueId: r.uniqueId ?? null, displayName: r.displayName ?? null, avatarUrl: r.avatarUrl ?? null, coins: Number(r.coins) || 0, gifts: Number(r.gifts) || 0 });
    }
  }

  /** Count a GIFT event that completes a gift; whether the totals changed. */
  add(ev) {
    if (ev?.eventType !== "GIFT" || !isCountedGift(ev.payload)) return false;
    const u = ev.user ?? {};
    if (!u.userId || u.userId === "0") return false;
    const row = this.rows.get(u.userId) ?? { userId: u.userId, coins: 0, gifts: 0 };
    row.uniqueId = u.uniqueId ?? row.uniqueId ?? null;
    row.displayName = u.displayName ?? row.displayName ?? null;
    row.avatarUrl = u.avatarUrl ?? row.avatarUrl ?? null;
    row.coins += Number(ev.payload?.coins) || 0;
    row.gifts += Number(ev.payload?.giftCount) || 1; // gifts sent: a streak of 10 is 10, as the server counts
    this.rows.set(u.userId, row);
    if (this.rows.size > MAX_GIFTERS) this.forgetLowest();
    return true;
  }

  forgetLowest() {
    let low = null;
    for (const r of this.rows.values()) if (!low || r.coins < low.coins) low = r;
    this.rows.delete(low.userId);
  }

  /** The first ``count`` by coins, then user id (the server's order: rows do not jump when
   * the state is fetched again). */
  top(count) {
    return [...this.rows.values()]
      .sort((a, b) => b.coins - a.coins || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
      .slice(0, Math.max(0, count));
  }
}
