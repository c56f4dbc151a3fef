// The text the views show (src/ttlp/api/ui/format.js). Times with a pinned locale and zone.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  badge,
  bodyText,
  chipLabel,
  countText,
  dateTime,
  dlqOutcome,
  dlqSummary,
  errorLines,
  eventLabel,
  executionCells,
  feedStatusText,
  giftParts,
  hasUser,
  isCdnUrl,
  payloadText,
  person,
  replayProgress,
  ruleCooldown,
  sessionLines,
  coverageLines,
  duration,
  ingestStatusText,
  pickIngestReport,
  time,
  userTitle,
} from "../../src/ttlp/api/ui/format.js";

const UTC = { locale: "en-GB", timeZone: "UTC" };
const AT = "2026-03-07T21:05:09.123Z";

describe("times", () => {
  test("time: the time of day, 24 h", () => {
    assert.equal(time(AT, UTC), "21:05:09");
    assert.equal(time(AT, { locale: "en-GB", timeZone: "Asia/Tokyo" }), "06:05:09");
  });

  test("dateTime: date and time, 24 h", () => {
    assert.equal(dateTime(AT, UTC), "07/03/2026, 21:05:09");
  });

  test("no time, or not a time: time is empty, dateTime a dash", () => {
    for (const bad of [null, undefined, "", "yesterday"]) {
      assert.equal(time(bad, UTC), "");
      assert.equal(dateTime(bad, UTC), "—");
    }
  });
});

describe("an event's row", () => {
  const cases = [
    [{ eventType: "CHAT", payload: { message: "<img src=x onerror=alert(1)>" } }, "<img src=x onerror=alert(1)>"],
    [{ eventType: "CHAT", payload: {} }, ""],
    [{ eventType: "LIKE", payload: { likeCount: 15, totalLikeCount: 15234 } }, "+15 likes (total 15234)"],
    [{ eventType: "LIKE", payload: {} }, "+0 likes (total ?)"],
    [{ eventType: "JOIN" }, "joined"],
    [{ eventType: "FOLLOW" }, "followed"],
    [{ eventType: "SHARE" }, "shared the stream"],
    [{ eventType: "SUBSCRIBE", payload: { subMonth: 3 } }, "subscribed (month 3)"],
    [{ eventType: "SUBSCRIBE", payload: {} }, "subscribed"],
    [{ eventType: "EMOTE", payload: {} }, "sent an emote"],
    [
      {
        eventType: "BATTLE",
        payload: { battleStatus: "ENDED", participants: [{ uniqueId: "luna.beats", score: 5400 }, { userId: "9", score: 0 }, { uniqueId: "dj.nova" }] },
      },
      "ENDED @luna.beats 5400 vs @9 0 vs @dj.nova",
    ],
    [{ eventType: "ROOM_USER", payload: { viewerCount: 1523, totalViewers: 20411 } }, "1523 watching (20411 total)"],
    [{ eventType: "CONNECTED", payload: { provider: "mock" } }, "connected via mock"],
    [{ eventType: "DISCONNECTED", payload: { reason: "stream ended" } }, "disconnected: stream ended"],
    [{ eventType: "DISCONNECTED", payload: { code: 4404 } }, "disconnected: 4404"],
    [{ eventType: "ERROR", payload: { code: "ROOM_INFO_TIMEOUT", message: "room info request timed out" } }, "ROOM_INFO_TIMEOUT: room info request timed out"],
    [{ eventType: "ERROR", payload: {} }, "error: "],
    [{ eventType: "STREAM_END", payload: { reason: "LIVE has ended" } }, "stream ended LIVE has ended"],
    [{ eventType: "RAW", payload: { rawType: "WebcastControlMessage" } }, "WebcastControlMessage"],
    [{ eventType: "RAW", payload: {} }, "raw"],
    [{ eventType: "SOMETHING_NEW", payload: {} }, "SOMETHING_NEW"],
  ];
  for (const [ev, text] of cases) {
    test(`bodyText ${ev.eventType}: ${JSON.stringify(text)}`, () => assert.equal(bodyText(ev), text));
  }

  test("giftParts: name, count and coins, with defaults", () => {
    assert.deepEqual(giftParts({ giftName: "Lion", giftCount: 1, coins: 29999 }), { name: "Lion", count: "×1", coins: "29999 coins" });
    assert.deepEqual(giftParts({ giftId: 5655 }), { name: "gift 5655", count: "×1", coins: "0 coins" });
    assert.deepEqual(giftParts(undefined), { name: "gift undefined", count: "×1", coins: "0 coins" });
  });

  test("badges: short names, a type the UI does not know as it is", () => {
    assert.equal(badge("ROOM_USER"), "viewers");
    assert.equal(badge("SUBSCRIBE"), "sub");
    assert.equal(badge("STREAM_END"), "end");
    assert.equal(badge("CHAT"), "chat");
    assert.equal(badge("NEW_TYPE"), "NEW_TYPE");
  });

  test("hasUser: a real user, not the system's 0 or none", () => {
    assert.equal(hasUser({ userId: "111" }), true);
    assert.equal(hasUser({ userId: "0" }), false);
    assert.equal(hasUser({}), false);
    assert.equal(hasUser(undefined), false);
  });

  test("userTitle: display name and id, or the id", () => {
    assert.equal(userTitle({ userId: "111", displayName: "Zoe" }), "Zoe (111)");
    assert.equal(userTitle({ userId: "111" }), "111");
  });

  test("chipLabel: lower case, words apart", () => {
    assert.equal(chipLabel("ROOM_USER"), "room user");
    assert.equal(chipLabel("CHAT"), "chat");
  });
});

describe("isCdnUrl: only https pictures on TikTok's CDN", () => {
  const cases = [
    ["https://p16-sign.tiktokcdn.com/avatar.webp", true],
    ["https://p77.tiktokcdn-us.com/a.png", true],
    ["https://sf16.ttwstatic.com/gift.png", true],
    ["http://p16-sign.tiktokcdn.com/avatar.webp", false],
    ["https://evil.example/tiktokcdn.com.png", false],
    ["https://tiktokcdn.com.evil.example/a.png", false],
    ["javascript:alert(1)", false],
    ["not a url", false],
    [null, false],
    [42, false],
  ];
  for (const [url, ok] of cases) test(`${url} → ${ok}`, () => assert.equal(isCdnUrl(url), ok));
});

describe("labels and summaries", () => {
  test("eventLabel: a gift, a chat (cut at 40 characters), an event without user", () => {
    const gift = { eventType: "GIFT", timestamp: AT, user: { uniqueId: "akhmed_kzn" }, payload: { giftName: "Lion", giftCount: 1, coins: 29999 } };
    assert.equal(eventLabel(gift, UTC), "07/03/2026, 21:05:09 · @akhmed_kzn Lion ×1 (29999 coins)");
    const chat = { eventType: "CHAT", timestamp: AT, user: { uniqueId: "zoe" }, payload: { message: "x".repeat(50) } };
    assert.equal(eventLabel(chat, UTC), `07/03/2026, 21:05:09 · @zoe ${"x".repeat(40)}`);
    assert.equal(eventLabel({ eventType: "STREAM_END", timestamp: null, payload: {} }, UTC), "— ·");
    assert.equal(eventLabel({ eventType: "GIFT", timestamp: AT, payload: {} }, UTC), "07/03/2026, 21:05:09 ·  gift ×1 (0 coins)");
  });

  test("feed count and status", () => {
    assert.equal(countText(29, 33), "29 shown · 33 received");
    assert.equal(feedStatusText("live"), "● live");
    assert.equal(feedStatusText("offline", "feed refused; retrying"), "● offline (feed refused; retrying)");
  });

  test("person: the handle, or hidden for a viewer", () => {
    assert.equal(person({ uniqueId: "zoe.petals" }), "@zoe.petals");
    assert.equal(person({ uniqueId: null }), "(hidden)");
  });

  test("ruleCooldown", () => {
    assert.equal(ruleCooldown({ cooldownS: 30, userCooldownS: 0 }), "30s / 0s per user");
  });

  test("executionCells: every column as text, blanks for what is missing", () => {
    const done = { createdAt: AT, status: "success", reason: null, rendered: "zoe sent Lion", error: null, durationMs: 3 };
    assert.deepEqual(executionCells(done, UTC), ["07/03/2026, 21:05:09", "success", "", "zoe sent Lion", "", "3"]);
    assert.deepEqual(executionCells({ status: "skipped", reason: "cooldown" }, UTC), ["—", "skipped", "cooldown", "", "", ""]);
  });

  test("errorLines: the message, then the listed problems", () => {
    const err = { message: "invalid rule", extra: [{ key: "template", message: "unknown placeholder {nonsense}" }, { message: "no key" }, { code: 1 }] };
    assert.deepEqual(errorLines(err), ["invalid rule", "template: unknown placeholder {nonsense}", "no key", '{"code":1}']);
    assert.deepEqual(errorLines(new Error("offline")), ["offline"]);
  });

  test("payloadText: a string as it is, anything else as indented JSON", () => {
    assert.equal(payloadText("data-not-json"), "data-not-json");
    assert.equal(payloadText({ streamId: "7441", n: [1] }), '{\n  "streamId": "7441",\n  "n": [\n    1\n  ]\n}');
  });

  test("dlqSummary", () => {
    assert.equal(dlqSummary(3), "3 in ttlc:dlq across every stage and streamer. Retry sends a letter back where it failed; Purge deletes it (so do `ttlp dlq retry|purge <id>`).");
  });

  test("dlqOutcome: what a retry or purge did, in one line", () => {
    const none = { retried: [], queued: [], skipped: [], purged: [] };
    assert.equal(dlqOutcome("purge", { ...none, purged: ["1-0", "2-0"] }), "2 dead letters purged");
    assert.equal(dlqOutcome("retry", { ...none, retried: ["1-0"] }), "1 dead letter retried");
    const mixed = { ...none, retried: ["1-0", "2-0"], queued: ["3-0"], skipped: [{ id: "4-0", reason: "the payload is not JSON" }] };
    assert.equal(
      dlqOutcome("retry", mixed),
      "2 dead letters retried · 1 dead letter queued for the running ttlp · 1 dead letter not retried: the payload is not JSON",
    );
    assert.equal(dlqOutcome("retry", none), "nothing retried");
  });

  test("ingest status: each state as the header shows it, the reason as its title", () => {
    const base = { uniqueId: "luna.beats", provider: "direct", reconnectsToday: 0, stale: false, lastMessageAgeS: null };
    assert.deepEqual(ingestStatusText({ ...base, state: "connected", lastMessageAgeS: 2.4, reconnectsToday: 3 }, UTC), {
      text: "ingest: connected · last message 2 s ago · 3 reconnects today",
      title: "",
      state: "connected",
    });
    const backoff = ingestStatusText({ ...base, state: "backing_off", until: "2026-03-07T21:14:05Z", reason: "ConnectError (host webcast.tiktok.com)" }, UTC);
    assert.deepEqual(backoff, { text: "ingest: backing off · until 21:14:05", title: "ConnectError (host webcast.tiktok.com)", state: "backing_off" });
    assert.equal(ingestStatusText({ ...base, state: "waiting_for_live", until: "2026-03-07T21:14:05Z" }, UTC).text, "ingest: waiting for live · next check 21:14:05");
    const stopped = ingestStatusText({ ...base, state: "stopped", reason: "bad API key" }, UTC);
    assert.deepEqual([stopped.text, stopped.title, stopped.state], ["ingest: stopped", "bad API key", "stopped"]);
    const stale = ingestStatusText({ ...base, state: "connected", stale: true, updatedAt: "2026-03-07T21:00:00Z", reconnectsToday: 1 }, UTC);
    assert.deepEqual([stale.text, stale.state], ["ingest: connected · 1 reconnect today · stale: no report since 21:00:00", "stale"]);
    assert.equal(ingestStatusText(null, UTC).text, "ingest: no report");
    assert.equal(ingestStatusText(undefined, UTC).text, "ingest: ?");
  });

  test("pickIngestReport: the picked streamer's, else the mock's when it is the only one", () => {
    const luna = { uniqueId: "luna.beats" };
    const mock = { uniqueId: "mock" };
    assert.equal(pickIngestReport([mock, luna], "luna.beats"), luna);
    assert.equal(pickIngestReport([mock], "luna.beats"), mock);
    assert.equal(pickIngestReport([mock, { uniqueId: "other" }], "luna.beats"), null);
    assert.equal(pickIngestReport([], "luna.beats"), null);
  });

  test("coverageLines: complete, each gap with its length, time and reason, nothing for a replay", () => {
    assert.deepEqual(coverageLines({ complete: true, gaps: [] }, UTC), ["complete: connected all the while the streamer was live"]);
    const gaps = [
      { start: "2026-03-07T21:13:05Z", end: "2026-03-07T21:13:47Z", seconds: 42.4, reason: "no message from TikTok for 60 s" },
      { start: "2026-03-07T22:00:00Z", end: "2026-03-07T23:01:01Z", seconds: 3661, reason: "ttlp stopped" },
    ];
    assert.deepEqual(coverageLines({ complete: false, gaps }, UTC), [
      "missing 00:42 at 21:13:05 (no message from TikTok for 60 s)",
      "missing 1:01:01 at 22:00:00 (ttlp stopped)",
    ]);
    assert.equal(coverageLines({ complete: null }, UTC), null);
    assert.equal(coverageLines({}, UTC), null);
    assert.equal(duration(0), "00:00");
    assert.equal(duration(59.6), "01:00");
  });

  test("sessionLines", () => {
    const s = { uniqueId: "luna.beats", type: "replay", provider: "mock", eventCount: 46, createdAt: AT, endedAt: null };
    assert.deepEqual(sessionLines(s, UTC), ["@luna.beats · replay · mock · 46 events", "started 07/03/2026, 21:05:09 · ended —"]);
    assert.equal(sessionLines({ type: "live", eventCount: 0 }, UTC)[0], "@? · live · 0 events");
    // A running live session fetched without a provider or a count: nothing "null", no empty part.
    const running = sessionLines({ uniqueId: "luna.beats", type: "live", provider: null, eventCount: null, createdAt: AT, endedAt: null, live: true }, UTC);
    assert.deepEqual(running, ["@luna.beats · live", "started 07/03/2026, 21:05:09 · running"]);
    assert.ok(!running.join(" ").match(/null|undefined/));
    assert.equal(sessionLines({ type: "live", eventCount: 12345 }, UTC)[0], "@? · live · 12,345 events");
    assert.equal(
      sessionLines({ type: "live", eventCount: 3, createdAt: "2026-03-07T21:05:09Z", endedAt: "2026-03-07T21:06:00Z", interrupted: true }, UTC)[1],
      "started 07/03/2026, 21:05:09 · ended 07/03/2026, 21:06:00 (interrupted: ttlp stopped without closing it)",
    );
  });

  test("replayProgress: counting up, done at the source's count", () => {
    assert.deepEqual(replayProgress(10, 46), { text: "replaying: 10 / 46 events", done: false });
    assert.deepEqual(replayProgress(46, 46), { text: "replayed: 46 events", done: true });
    assert.deepEqual(replayProgress(3, null), { text: "replaying: 3 / ? events", done: false });
  });
});
