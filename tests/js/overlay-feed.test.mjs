// The overlay's address, URLs and feed connection: batching per frame, resuming, named events,
// a refused feed (src/ttlp/api/ui/overlay/feed.js), with a fake EventSource.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { feedUrl, OverlayConnection, overlayParams, parseBatch, soundUrl, stateUrl } from "../../src/ttlp/api/ui/overlay/feed.js";
import { DEFAULTS, merge, withDefaults } from "../../src/ttlp/api/ui/overlay/options.js";

class FakeSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static made = [];

  constructor(url) {
    this.url = url;
    this.readyState = FakeSource.CONNECTING;
    this.listeners = {};
    FakeSource.made.push(this);
  }

  addEventListener(type, fn) {
    (this.listeners[type] ??= []).push(fn);
  }

  emit(type, data = "{}", lastEventId = "") {
    for (const fn of this.listeners[type] ?? []) fn({ data, lastEventId });
  }

  close() {
    this.readyState = FakeSource.CLOSED;
  }
}

function connect(params = { kind: "alerts", token: "tok", preview: false }, probe = async () => "ok") {
  FakeSource.made = [];
  const frames = [];
  const got = { batches: [], named: [] };
  const on = {
    events: (b) => got.batches.push(b),
    gap: () => got.named.push("gap"),
    options: (d) => got.named.push(["options", d]),
    skip: () => got.named.push("skip"),
    revoked: () => got.named.push("revoked"),
    status: (s) => got.named.push(["status", s]),
  };
  const c = new OverlayConnection(params, on, { EventSource: FakeSource, frame: (fn) => frames.push(fn), probe });
  c.start();
  return { c, got, frames, es: () => FakeSource.made.at(-1) };
}

describe("address and URLs", () => {
  test("overlayParams: kind from the path, token and preview from the query", () => {
    assert.deepEqual(overlayParams({ href: "http://h:3000/overlay/alerts?token=abc&preview=1" }), { kind: "alerts", token: "abc", preview: true });
    assert.deepEqual(overlayParams({ href: "http://h/overlay/chat/?token=a%2Bb" }), { kind: "chat", token: "a+b", preview: false });
    assert.deepEqual(overlayParams({ href: "http://h/other" }), { kind: "", token: "", preview: false });
  });

  test("state, feed and sound URLs carry the token (escaped), preview and a resume point", () => {
    const p = { kind: "goal", token: "a&b", preview: true };
    assert.equal(stateUrl(p), "/overlay/state?token=a%26b&kind=goal&preview=1");
    assert.equal(feedUrl(p), "/overlay/feed?token=a%26b&preview=1");
    assert.equal(feedUrl({ ...p, preview: false }, "1-2"), "/overlay/feed?token=a%26b&lastEventId=1-2");
    assert.equal(soundUrl(p, 7), "/overlay/sounds/7?token=a%26b");
  });

  test("parseBatch skips what is not JSON", () => {
    assert.deepEqual(parseBatch(['{"a":1}', "nope", "[2]"]), [{ a: 1 }, [2]]);
  });
});

describe("feed connection", () => {
  test("events are handed over once per frame, in order, as parsed batches", () => {
    const { got, frames, es } = connect();
    es().emit("event", '{"eventId":"a"}', "1-0");
    es().emit("event", "not json", "1-1");
    es().emit("message", '{"eventId":"b"}', "1-2");
    assert.equal(frames.length, 1); // one frame asked for, however many events came
    frames[0]();
    assert.deepEqual(got.batches, [[{ eventId: "a" }, { eventId: "b" }]]);
    frames[0](); // a second call (the fallback timer) does nothing
    assert.equal(got.batches.length, 1);
  });

  test("named events: gap, options, skip; revoked closes the feed", () => {
    const { c, got, es } = connect();
    es().emit("gap");
    es().emit("options", '{"optionsVersion":3}');
    es().emit("skip");
    es().emit("revoked");
    assert.deepEqual(got.named, ["gap", ["options", { optionsVersion: 3 }], "skip", "revoked"]);
    assert.equal(es().readyState, FakeSource.CLOSED);
    assert.equal(c.closed, true);
  });

  test("a drop EventSource resumes by itself is only reported; a refused feed reopens after the last id", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const { got, es } = connect({ kind: "chat", token: "tok", preview: true });
    es().emit("event", '{"eventId":"a"}', "5-1");
    es().emit("error");
    assert.deepEqual(got.named.at(-1), ["status", "reconnecting"]);
    const first = es();
    first.readyState = FakeSource.CLOSED;
    first.emit("error");
    await Promise.resolve(); // the probe answers
    await Promise.resolve();
    t.mock.timers.tick(3000);
    assert.notEqual(es(), first);
    assert.equal(es().url, "/overlay/feed?token=tok&lastEventId=5-1&preview=1");
  });

  test("a refused feed whose token no longer works stops for good", async () => {
    const { c, got, es } = connect(undefined, async () => "revoked");
    es().readyState = FakeSource.CLOSED;
    es().emit("error");
    await new Promise((r) => setImmediate(r));
    assert.equal(got.named.at(-1), "revoked");
    assert.equal(c.closed, true);
    assert.equal(FakeSource.made.length, 1);
  });
});

describe("options", () => {
  test("withDefaults fills what the answer lacks and keeps what it has", () => {
    const o = withDefaults({ goal: { target: 50 }, alerts: { tts: { chat: true } }, common: { bannedWords: ["x"] } });
    assert.equal(o.goal.target, 50);
    assert.equal(o.goal.metric, "likes");
    assert.equal(o.alerts.tts.chat, true);
    assert.equal(o.alerts.tts.maxLength, 200);
    assert.deepEqual(o.common.bannedWords, ["x"]);
    assert.deepEqual(o.ticker.kinds, ["FOLLOW", "GIFT"]);
  });

  test("merge: a value of the wrong shape keeps the default; null slots take any value", () => {
    const o = merge(DEFAULTS, { alerts: { kinds: 5, sounds: { gift: 12 }, minCoins: { x: 1 } }, chat: "no" });
    assert.deepEqual(o.alerts.kinds, DEFAULTS.alerts.kinds);
    assert.equal(o.alerts.sounds.gift, 12);
    assert.equal(o.alerts.minCoins, 0);
    assert.deepEqual(o.chat, DEFAULTS.chat);
    o.alerts.kinds.follow = false; // a copy: the defaults stay as they are
    assert.equal(DEFAULTS.alerts.kinds.follow, true);
  });
});
