// Analytics results shaped for the charts and tables (src/ttlp/api/ui/stats.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { analyticsQuery, analyticsView, bucketUnit, series } from "../../src/ttlp/api/ui/stats.js";

const T0 = Date.parse("2026-03-07T21:00:00Z");
const at = (minutes) => new Date(T0 + minutes * 60_000).toISOString();

const RESULT = {
  bucketSeconds: 60,
  buckets: [
    { start: at(0), counts: { CHAT: 2, GIFT: 1 }, coins: 30 },
    { start: at(3), counts: { LIKE: 4 }, coins: 0 },
    { start: at(1), counts: {}, coins: 5 },
  ],
  totals: { CHAT: 2, GIFT: 1, LIKE: 4 },
  coins: 35,
  uniqueUsers: 3,
  peakViewers: null,
  topGifters: [{ uniqueId: "akhmed_kzn", coins: 30, gifts: 1 }, { uniqueId: null, coins: 5, gifts: 1 }],
  topChatters: [{ uniqueId: "zoe.petals", messages: 2 }],
};

const values = (points) => points.map((p) => p.v);
const minutes = (points) => points.map((p) => (p.t.getTime() - T0) / 60_000);

describe("series", () => {
  test("one point per bucket in time order, empty buckets filled with 0", () => {
    const { events, coins } = series(RESULT);
    assert.deepEqual(minutes(events), [0, 1, 2, 3]);
    assert.deepEqual(values(events), [3, 0, 0, 4]);
    assert.deepEqual(values(coins), [30, 5, 0, 0]);
    assert.ok(events.every((p) => p.t instanceof Date));
  });

  test("at most limit points: the latest ones", () => {
    const { events } = series(RESULT, 2);
    assert.deepEqual(minutes(events), [2, 3]);
    assert.deepEqual(values(events), [0, 4]);
  });

  test("the bucket width comes from the result", () => {
    const result = { bucketSeconds: 300, buckets: [{ start: at(0), counts: { CHAT: 1 }, coins: 0 }, { start: at(10), counts: { CHAT: 2 }, coins: 0 }] };
    assert.deepEqual(minutes(series(result).events), [0, 5, 10]);
  });

  test("no buckets, no points", () => {
    assert.deepEqual(series({ bucketSeconds: 60, buckets: [] }), { events: [], coins: [] });
  });
});

describe("analyticsQuery", () => {
  test("the stream, or one session", () => {
    assert.deepEqual(analyticsQuery("luna.beats"), { streamId: "@luna.beats", bucket: 60 });
    assert.deepEqual(analyticsQuery("luna.beats", { sessionId: "abc", bucket: 300 }), { sessionId: "abc", bucket: 300 });
  });

  test("datetime-local values are local times, sent as UTC instants", () => {
    const zone = process.env.TZ;
    process.env.TZ = "Asia/Kolkata"; // +05:30
    try {
      assert.deepEqual(analyticsQuery("luna.beats", { since: "2026-03-07T10:00", until: "2026-03-08T00:15" }), {
        streamId: "@luna.beats",
        bucket: 60,
        since: "2026-03-07T04:30:00.000Z",
        until: "2026-03-07T18:45:00.000Z",
      });
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});

describe("analyticsView", () => {
  test("figures, charts and tables of the overview (compact: no totals by type)", () => {
    const view = analyticsView(RESULT, { compact: true, bucket: 60 });
    assert.deepEqual(view.stats, [
      ["events", 7],
      ["coins", 35],
      ["unique users", 3],
      ["peak viewers", "—"],
    ]);
    assert.deepEqual(view.charts.map((c) => [c.title, c.unit, values(c.points)]), [
      ["Events / min", "events", [3, 0, 0, 4]],
      ["Coins / min", "coins", [30, 5, 0, 0]],
    ]);
    assert.deepEqual(view.gifters, [["@akhmed_kzn", 30, 1], ["(hidden)", 5, 1]]);
    assert.deepEqual(view.chatters, [["@zoe.petals", 2]]);
    assert.equal(view.byType, null);
  });

  test("the analytics page adds the totals by type, largest first", () => {
    const view = analyticsView({ ...RESULT, peakViewers: 1532 }, { bucket: 300 });
    assert.deepEqual(view.byType, [["LIKE", 4], ["CHAT", 2], ["GIFT", 1]]);
    assert.equal(view.charts[0].title, "Events / 300s");
    assert.deepEqual(view.stats[3], ["peak viewers", 1532]);
  });

  test("the overview keeps the last 60 buckets, the page 720", () => {
    const buckets = Array.from({ length: 800 }, (_, i) => ({ start: at(i), counts: { CHAT: 1 }, coins: 0 }));
    const result = { ...RESULT, buckets };
    assert.equal(analyticsView(result, { compact: true }).charts[0].points.length, 60);
    assert.equal(analyticsView(result).charts[0].points.length, 720);
  });

  test("bucketUnit", () => {
    assert.equal(bucketUnit(60), "min");
    assert.equal(bucketUnit(3600), "3600s");
  });
});
