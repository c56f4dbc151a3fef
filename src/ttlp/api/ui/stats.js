// Analytics results (GET /analytics) shaped for the overview and the analytics page: the query,
// the series of the charts, the tables. No DOM here (tests/js/stats.test.mjs).

import { person } from "./format.js";

export const BUCKETS = [
  { value: "60", label: "per minute" },
  { value: "300", label: "per 5 minutes" },
  { value: "3600", label: "per hour" },
];

/** The query of GET /analytics: one session, or the whole stream; datetime-local values
 * (``since``, ``until``: local times) as UTC instants. */
export function analyticsQuery(stream, { sessionId = "", bucket = 60, since = "", until = "" } = {}) {
  const params = sessionId ? { sessionId, bucket } : { streamId: `@${stream}`, bucket };
  if (since) params.since = new Date(since).toISOString();
  if (until) params.until = new Date(until).toISOString();
  return params;
}

/** "min" for one-minute buckets, else "<n>s". */
export function bucketUnit(bucket) {
  return bucket === 60 ? "min" : `${bucket}s`;
}

function sum(counts) {
  return Object.values(counts).reduce((a, x) => a + x, 0);
}

/** The analytics buckets as two series, empty buckets filled in (at most ``limit`` points). */
export function series(result, limit = 720) {
  const step = (result.bucketSeconds || 60) * 1000;
  const byStart = new Map(result.buckets.map((b) => [Date.parse(b.start), b]));
  const starts = [...byStart.keys()].sort((a, b) => a - b);
  const events = [];
  const coins = [];
  if (!starts.length) return { events, coins };
  const from = Math.max(starts[0], starts[starts.length - 1] - step * (limit - 1));
  for (let t = from; t <= starts[starts.length - 1]; t += step) {
    const b = byStart.get(t);
    events.push({ t: new Date(t), v: b ? sum(b.counts) : 0 });
    coins.push({ t: new Date(t), v: b ? b.coins : 0 });
  }
  return { events, coins };
}

/** Everything the analytics panel shows, as plain rows: the four figures, the charts' series,
 * the leaderboards and (``compact`` off) the totals by type, largest first. */
export function analyticsView(result, { compact = false, bucket = 60 } = {}) {
  const { events, coins } = series(result, compact ? 60 : 720);
  const unit = bucketUnit(bucket);
  return {
    stats: [
      ["events", sum(result.totals)],
      ["coins", result.coins],
      ["unique users", result.uniqueUsers],
      ["peak viewers", result.peakViewers ?? "—"],
    ],
    charts: [
      { title: `Events / ${unit}`, points: events, unit: "events" },
      { title: `Coins / ${unit}`, points: coins, unit: "coins" },
    ],
    gifters: result.topGifters.map((r) => [person(r), r.coins, r.gifts]),
    chatters: result.topChatters.map((r) => [person(r), r.messages]),
    byType: compact ? null : Object.entries(result.totals).sort((a, b) => b[1] - a[1]),
  };
}
