// The ticker's items and its scrolling figures (src/ttlp/api/ui/overlay/ticker.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { copiesFor, scrollSeconds, Ticker, tickerItem } from "../../src/ttlp/api/ui/overlay/ticker.js";
import { bannedMatcher } from "../../src/ttlp/api/ui/overlay/words.js";

const ZOE = { userId: "111", uniqueId: "zoe.petals", displayName: "Zoë" };
let n = 0;
const ev = (eventType, payload = {}, user = ZOE) => ({ eventId: `e${++n}`, eventType, user, payload });
const gift = (count, { active = false, end = true } = {}) =>
  ev("GIFT", { giftId: 1, giftName: "Rose", giftCount: count, coins: count, isGiftStreak: true, streakActive: active, streakEnd: end, giftImageUrl: "https://p16.tiktokcdn.com/rose.png" });

describe("ticker", () => {
  test("items say who did what; a gift streak is one item, when it completes", () => {
    assert.deepEqual(tickerItem({ ...ev("FOLLOW"), source: "replay" }), { id: `e${n}`, type: "FOLLOW", who: "Zoë", text: "followed", picture: null, source: "replay" });
    assert.equal(tickerItem(gift(3, { active: true, end: false })), null);
    assert.deepEqual(tickerItem(gift(5)).text, "Rose ×5");
    assert.equal(tickerItem(ev("ROOM_USER", { viewerCount: 5 })), null);
  });

  test("chat, likes, joins and emotes when the options ask for them; banned words masked", () => {
    const mask = bannedMatcher(["darn"]).mask;
    assert.deepEqual(tickerItem(ev("CHAT", { message: "darn nice" }, { userId: "1", uniqueId: "darn" }), mask).who, "@****");
    assert.equal(tickerItem(ev("CHAT", { message: "darn nice" }), mask).text, "**** nice");
    assert.equal(tickerItem(ev("LIKE", { likeCount: 15 })).text, "liked ×15");
    assert.equal(tickerItem(ev("JOIN")).text, "joined");
    assert.equal(tickerItem(ev("EMOTE", { emoteId: "1", emoteImageUrl: "https://p16.tiktokcdn.com/e.png" })).picture, "https://p16.tiktokcdn.com/e.png");
    const t = new Ticker({ kinds: ["CHAT"], count: 5, mask });
    t.add(ev("CHAT", { message: "oh darn" }));
    assert.equal(t.items[0].text, "oh ****");
  });

  test("keeps the latest `count` items of its kinds, newest first, each event once", () => {
    const t = new Ticker({ kinds: ["FOLLOW", "GIFT"], count: 3 });
    const first = ev("FOLLOW");
    assert.equal(t.add(first), true);
    assert.equal(t.add(first), false);
    assert.equal(t.add(ev("SHARE")), false); // not one of its kinds
    t.add(gift(1, { active: true, end: false }));
    t.add(gift(5));
    t.add(ev("FOLLOW", {}, { userId: "2", uniqueId: "owl" }));
    t.add(ev("FOLLOW", {}, { userId: "3", uniqueId: "cat" }));
    assert.deepEqual(t.items.map((x) => [x.type, x.who]), [["FOLLOW", "@cat"], ["FOLLOW", "@owl"], ["GIFT", "Zoë"]]);
  });

  test("reconfiguring drops items of kinds no longer wanted; reset starts from recent events", () => {
    const t = new Ticker({ kinds: ["FOLLOW", "GIFT"], count: 10 });
    t.reset([ev("FOLLOW"), gift(2), ev("FOLLOW")]);
    assert.deepEqual(t.items.map((x) => x.type), ["FOLLOW", "GIFT", "FOLLOW"]);
    t.configure({ kinds: ["GIFT"], count: 10 });
    assert.deepEqual(t.items.map((x) => x.type), ["GIFT"]);
  });

  test("scrolling: seconds for a distance at a speed; copies to fill the band", () => {
    assert.equal(scrollSeconds(600, 60), 10);
    assert.equal(scrollSeconds(10, 60), 1);
    assert.equal(scrollSeconds(100, 0), 10);
    assert.equal(copiesFor(300, 1000), 5);
    assert.equal(copiesFor(2000, 1000), 2);
    assert.equal(copiesFor(0, 1000), 1);
    assert.equal(copiesFor(1, 100_000), 20);
  });
});
