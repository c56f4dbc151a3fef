// The alerts overlay's queue: one alert at a time, streaks folded, minCoins, kinds on/off,
// bursts capped (src/ttlp/api/ui/overlay/alerts.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AlertQueue,
  alertKind,
  alertSpeech,
  alertText,
  FINAL_HOLD_MS,
  GAP_MS,
  GONE_TTL_MS,
  isCountedGift,
  MAX_QUEUE,
  MAX_STREAK_FACTOR,
} from "../../src/ttlp/api/ui/overlay/alerts.js";
import { DEFAULTS, merge } from "../../src/ttlp/api/ui/overlay/options.js";

const D = 1000; // durationMs in these tests
const ZOE = { userId: "111", uniqueId: "zoe.petals", displayName: "Zoë" };
const OWL = { userId: "222", uniqueId: "night.owl" };

let n = 0;
function event(eventType, user = ZOE, payload = {}, sessionId = "s1") {
  n += 1;
  return { eventId: `e${n}`, eventType, sessionId, source: "live", user, payload };
}

/** Frame ``i`` (1-based) of a streak of Galaxy (1000 coins each). */
function frame(i, { user = ZOE, end = false, giftId = 6064, coinsEach = 1000 } = {}) {
  return event("GIFT", user, { giftId, giftName: "Galaxy", giftCount: i, coins: coinsEach * i, isGiftStreak: true, streakActive: !end, streakEnd: end });
}

function rose(user = ZOE, coins = 1) {
  return event("GIFT", user, { giftId: 5655, giftName: "Rose", giftCount: 1, coins, isGiftStreak: false, streakActive: false, streakEnd: true });
}

function queue(alerts = {}) {
  return new AlertQueue(merge(DEFAULTS.alerts, { durationMs: D, ...alerts }));
}

/** Run the queue from ``from`` to ``to`` ms the way the page does: tick at each due time.
 * Returns the alerts shown, in order, as [time, kind, who, count]. */
function run(q, from, to) {
  const seen = [];
  let now = from;
  for (;;) {
    const { shown } = q.tick(now);
    if (shown) seen.push([now, shown.kind, shown.ev.user.uniqueId, shown.count]);
    const delay = q.nextDelay(now);
    if (delay === null || now + delay > to) break;
    now += Math.max(delay, 1);
  }
  return seen;
}

describe("kinds", () => {
  test("alertKind: follow, share, subscribe, gift; other events are not alerts", () => {
    assert.deepEqual(["FOLLOW", "SHARE", "SUBSCRIBE", "GIFT", "CHAT", "LIKE"].map((t) => alertKind({ eventType: t })), ["follow", "share", "subscribe", "gift", null, null]);
  });

  test("a kind switched off is not queued, and switching it off drops the queued ones", () => {
    const q = queue({ kinds: { follow: false, share: true, subscribe: true, gift: true } });
    assert.equal(q.offer(event("FOLLOW"), 0), false);
    q.offer(event("SHARE"), 0);
    q.offer(event("SHARE", OWL), 0);
    q.offer(event("CHAT"), 0);
    assert.equal(q.queue.length, 2);
    q.configure(merge(DEFAULTS.alerts, { durationMs: D, kinds: { share: false } }));
    assert.equal(q.queue.length, 0);
  });
});

describe("one at a time", () => {
  test("a burst is shown one after the other, each for durationMs with a gap between", () => {
    const q = queue();
    q.offer(event("FOLLOW", ZOE), 0);
    q.offer(event("SHARE", OWL), 0);
    q.offer(event("SUBSCRIBE", ZOE, { subMonth: 2 }), 0);
    const shown = run(q, 0, 10 * D);
    assert.deepEqual(shown.map(([, kind, who]) => [kind, who]), [["follow", "zoe.petals"], ["share", "night.owl"], ["subscribe", "zoe.petals"]]);
    assert.deepEqual(shown.map(([t]) => t), [0, D + GAP_MS, 2 * (D + GAP_MS)]);
    assert.equal(q.current, null);
  });

  test("there is never a second alert while one is on screen", () => {
    const q = queue();
    for (let i = 0; i < 5; i += 1) q.offer(event("FOLLOW", { userId: String(i), uniqueId: `u${i}` }), 0);
    let now = 0;
    const onScreen = [];
    while (now < 8 * D) {
      q.tick(now);
      onScreen.push(q.current?.id ?? null);
      now += 50;
    }
    // Each alert's id appears in one unbroken run: never interleaved, never two at once.
    const runs = onScreen.filter((id, i) => id !== null && id !== onScreen[i - 1]);
    assert.equal(new Set(runs).size, runs.length);
    assert.equal(runs.length, 5);
  });

  test("skip ends the alert on screen; the next one comes after the gap", () => {
    const q = queue();
    q.offer(event("FOLLOW", ZOE), 0);
    q.offer(event("FOLLOW", OWL), 0);
    q.tick(0);
    const skipped = q.skip(100);
    assert.equal(skipped.ev.user.uniqueId, "zoe.petals");
    assert.equal(q.current, null);
    assert.equal(q.nextDelay(100), GAP_MS);
    assert.equal(q.tick(100 + GAP_MS).shown.ev.user.uniqueId, "night.owl");
    assert.equal(q.skip(5000).ev.user.uniqueId, "night.owl");
    assert.equal(q.skip(5000), null);
  });

  test("in a burst beyond MAX_QUEUE the oldest follows give way before any gift", () => {
    const q = queue();
    q.offer(rose(ZOE, 5), 0);
    for (let i = 0; i < MAX_QUEUE + 5; i += 1) q.offer(event("FOLLOW", { userId: String(i), uniqueId: `u${i}` }), i);
    assert.equal(q.queue.length, MAX_QUEUE);
    assert.equal(q.dropped, 6);
    assert.equal(q.queue[0].kind, "gift");
    assert.equal(q.queue[1].ev.user.uniqueId, "u6");
    assert.equal(q.queue.at(-1).ev.user.uniqueId, `u${MAX_QUEUE + 4}`);
  });
});

describe("gift streaks", () => {
  test("a streak is one alert whose count grows in place while it waits in the queue", () => {
    const q = queue();
    q.offer(event("FOLLOW", OWL), 0);
    assert.equal(q.tick(0).shown.kind, "follow"); // on screen: the streak waits behind it
    for (let i = 1; i <= 4; i += 1) q.offer(frame(i), 10 * i);
    assert.equal(q.queue.length, 1);
    const [waiting] = q.queue;
    assert.deepEqual([waiting.count, waiting.coins, waiting.final, waiting.ver], [4, 4000, false, 3]);
    q.offer(frame(5, { end: true }), 100);
    assert.deepEqual([waiting.count, waiting.coins, waiting.final], [5, 5000, true]);
    const shown = run(q, 0, 10 * D);
    assert.deepEqual(shown.map(([t, kind, , count]) => [t, kind, count]), [[D + GAP_MS, "gift", 5]]);
  });

  test("a streak on screen grows in place and stays while frames keep coming", () => {
    const q = queue();
    q.offer(frame(1), 0);
    q.tick(0);
    const alert = q.current;
    q.offer(frame(2), 900);
    q.offer(frame(3), 1800); // past durationMs, but the streak is still growing
    assert.equal(q.tick(1850).ended, null);
    assert.equal(q.current, alert);
    assert.equal(alert.count, 3);
    assert.equal(q.endsAt(), 1800 + D);
    q.offer(frame(4, { end: true }), 2000);
    assert.equal(alert.final, true);
    assert.equal(q.endsAt(), 2000 + Math.min(FINAL_HOLD_MS, D));
    assert.equal(q.tick(2000 + FINAL_HOLD_MS).ended, alert);
  });

  test("a streak that never ends leaves the screen after MAX_STREAK_FACTOR × durationMs", () => {
    const q = queue();
    q.offer(frame(1), 0);
    q.tick(0);
    for (let t = 100, i = 2; t < 10 * D; t += 100, i += 1) q.offer(frame(i), t);
    assert.equal(q.endsAt(), MAX_STREAK_FACTOR * D);
  });

  test("after its alert is gone a streak's later frames are not shown again, its end clears it", () => {
    const q = queue();
    q.offer(frame(1), 0);
    q.tick(0);
    q.skip(10);
    assert.equal(q.offer(frame(2), 20), false);
    assert.equal(q.offer(frame(3, { end: true }), 30), false);
    assert.equal(q.queue.length, 0);
    // The same user sends the same gift again: a new streak, a new alert.
    assert.equal(q.offer(frame(1), 40), true);
    assert.equal(q.queue.length, 1);
  });

  test("a streak whose end frame was missed is forgotten after GONE_TTL_MS", () => {
    const q = queue();
    q.offer(frame(1), 0);
    q.tick(0);
    q.skip(10);
    assert.equal(q.offer(frame(1), GONE_TTL_MS + 10), true);
  });

  test("a late frame of a streak the ingest already closed is ignored", () => {
    const q = queue();
    const late = event("GIFT", ZOE, { giftId: 6064, giftName: "Galaxy", giftCount: 9, coins: 9000, isGiftStreak: true, streakActive: false, streakEnd: false });
    assert.equal(q.offer(late, 0), false);
    assert.equal(q.queue.length, 0);
  });

  test("streaks of different users or gifts are separate alerts", () => {
    const q = queue();
    q.offer(frame(1), 0);
    q.offer(frame(1, { user: OWL }), 0);
    q.offer(frame(1, { giftId: 1 }), 0);
    q.offer(frame(2), 0);
    assert.equal(q.queue.length, 3);
  });

  test("a streak's end frame after a timeout (ingest's STREAK_TIMEOUT) finalises it like any end", () => {
    const q = queue();
    q.offer(frame(1), 0);
    q.offer(frame(2), 10);
    q.offer(frame(2, { end: true }), 10_000); // the timeout repeats the last count, ended
    assert.deepEqual([q.queue[0].count, q.queue[0].final], [2, true]);
  });
});

describe("minCoins", () => {
  test("a single gift below the threshold is not shown, one at it is", () => {
    const q = queue({ minCoins: 100 });
    assert.equal(q.offer(rose(ZOE, 99), 0), false);
    assert.equal(q.offer(rose(ZOE, 100), 0), true);
    assert.equal(q.queue.length, 1);
  });

  test("a streak waits unseen until its total reaches the threshold, then shows and grows", () => {
    const q = queue({ minCoins: 2500 });
    assert.equal(q.offer(frame(1), 0), false);
    assert.equal(q.offer(frame(2), 10), false);
    assert.equal(q.queue.length, 0);
    assert.equal(q.offer(frame(3), 20), true);
    assert.equal(q.queue.length, 1);
    q.offer(frame(4, { end: true }), 30);
    assert.deepEqual([q.queue[0].count, q.queue[0].coins, q.queue[0].final], [4, 4000, true]);
  });

  test("a streak that ends below the threshold is never shown", () => {
    const q = queue({ minCoins: 5000 });
    q.offer(frame(1), 0);
    q.offer(frame(2, { end: true }), 10);
    assert.equal(q.queue.length, 0);
    assert.equal(q.held.size, 0);
    assert.deepEqual(run(q, 0, 10 * D), []);
  });

  test("follows, shares and subscriptions do not need coins", () => {
    const q = queue({ minCoins: 1_000_000 });
    assert.equal(q.offer(event("FOLLOW"), 0), true);
  });
});

describe("counting and text", () => {
  test("isCountedGift: a streak's end frame or a gift outside a streak, like the server's analytics", () => {
    assert.equal(isCountedGift({ streakActive: true, streakEnd: false }), false);
    assert.equal(isCountedGift({ streakActive: false, streakEnd: true }), true);
    assert.equal(isCountedGift({ streakActive: false, streakEnd: false }), false); // closed late frame
    assert.equal(isCountedGift({}), true);
  });

  test("alertText and alertSpeech say who did what", () => {
    const q = queue();
    q.offer(frame(3), 0);
    const [gift] = q.queue;
    assert.deepEqual(alertText(gift), { who: "Zoë", handle: "@zoe.petals", what: "sent Galaxy ×3" });
    assert.equal(alertSpeech(gift), "Zoë sent 3 Galaxy");
    q.offer(event("FOLLOW", OWL), 0);
    assert.deepEqual(alertText(q.queue[1]), { who: "@night.owl", handle: "@night.owl", what: "followed" });
    assert.equal(alertSpeech(q.queue[1]), "night.owl followed");
  });
});
