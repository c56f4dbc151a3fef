// The goal bar: a session's likes, coins, follows or subscriptions towards a target, from
// GET /overlay/state, then kept up to date from the feed (coins: a gift streak counts once, as
// the server counts it). No DOM here (tests/js/overlay-tally.test.mjs).

import { isCountedGift } from "./alerts.js";

/** How much one event moves a goal of ``metric``. */
export function goalDelta(metric, ev) {
  switch (metric) {
    case "likes":
      return ev.eventType === "LIKE" ? Number(ev.payload?.likeCount) || 0 : 0;
    case "coins":
      return ev.eventType === "GIFT" && isCountedGift(ev.payload) ? Number(ev.payload?.coins) || 0 : 0;
    case "follows":
      return ev.eventType === "FOLLOW" ? 1 : 0;
    case "subscriptions":
      return ev.eventType === "SUBSCRIBE" ? 1 : 0;
    default:
      return 0;
  }
}

export const GOAL_LABELS = { likes: "Likes", coins: "Coins", follows: "Follows", subscriptions: "Subscriptions" };

export class Goal {
  constructor() {
    this.load({});
  }

  /** The server's ``goal``: ``{metric, current, target, title}``. */
  load(goal) {
    this.metric = goal?.metric ?? "likes";
    this.current = Number(goal?.current) || 0;
    this.target = Math.max(0, Number(goal?.target) || 0);
    this.title = goal?.title ?? "";
  }

  add(ev) {
    const delta = goalDelta(this.metric, ev);
    this.current += delta;
    return delta !== 0;
  }

  /** What the bar shows: title, numbers, the filled share (0…1) and whether it is reached. */
  view() {
    const ratio = this.target > 0 ? Math.min(1, this.current / this.target) : 1;
    return {
      title: this.title || `${GOAL_LABELS[this.metric] ?? this.metric} goal`,
      current: this.current,
      target: this.target,
      ratio,
      reached: this.target > 0 && this.current >= this.target,
    };
  }
}
