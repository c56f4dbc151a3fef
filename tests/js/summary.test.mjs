// The session summary's text (src/ttlp/api/ui/format.js): the session page and the list's cells.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { gifterLine, sessionCells, summaryRows } from "../../src/ttlp/api/ui/format.js";

const SUMMARY = {
  sessionId: "s1",
  type: "live",
  live: false,
  durationSeconds: 3725,
  complete: false,
  gaps: [
    { start: "2026-03-07T21:05:09Z", end: "2026-03-07T21:05:39Z", seconds: 30, reason: "x" },
    { start: "2026-03-07T21:10:00Z", end: "2026-03-07T21:11:00Z", seconds: 60, reason: "y" },
  ],
  eventCount: 12345,
  eventsByType: { CHAT: 12000, GIFT: 345 },
  coins: 409552,
  gifts: 300,
  uniqueGifters: 42,
  topGifters: [],
  newFollowers: 7,
  shares: 2,
  subscriptions: 1,
  chatMessages: 12000,
  peakViewers: 812,
  averageViewers: 533.4,
};

describe("summaryRows", () => {
  test("every figure, labelled", () => {
    assert.deepEqual(Object.fromEntries(summaryRows(SUMMARY)), {
      duration: "1:02:05",
      coverage: "2 gaps, 01:30 missing",
      events: "12,345 (chat 12,000 · gift 345)",
      "chat messages": "12,000",
      coins: "409,552",
      gifts: "300",
      "unique gifters": "42",
      "new followers": "7",
      shares: "2",
      subscriptions: "1",
      "peak viewers": "812",
      "average viewers": "533.4",
    });
  });

  test("a running session, a complete one, a replay: never a literal null", () => {
    const rows = (x) => Object.fromEntries(summaryRows({ ...SUMMARY, ...x }));
    assert.equal(rows({ live: true, durationSeconds: 59 }).duration, "00:59 (live)");
    assert.equal(rows({ complete: true, gaps: [] }).coverage, "complete");
    const replay = rows({ type: "replay", complete: null, gaps: [], peakViewers: null, averageViewers: null, durationSeconds: null });
    assert.equal(replay.coverage, "—");
    assert.equal(replay["peak viewers"], "—");
    assert.equal(replay.duration, "—");
    for (const [, value] of summaryRows({ type: "replay", complete: null })) assert.doesNotMatch(value, /null|undefined|NaN/);
  });
});

describe("gifterLine", () => {
  test("with a handle, and as a VIEWER sees it (no identity)", () => {
    assert.equal(gifterLine({ rank: 1, uniqueId: "zoe", userId: "7", coins: 1234, gifts: 3 }), "@zoe — 1,234 coins · 3 gifts");
    assert.equal(gifterLine({ rank: 2, coins: 5, gifts: 1 }), "5 coins · 1 gift");
  });
});

describe("sessionCells", () => {
  test("duration, events, coins, gifters, peak", () => {
    assert.deepEqual(sessionCells(SUMMARY), ["1:02:05", "12,345", "409,552", "42", "812"]);
    assert.deepEqual(sessionCells({ durationSeconds: null, eventCount: 1, coins: 0, uniqueGifters: 0, peakViewers: null }), ["—", "1", "0", "0", "—"]);
  });
});
