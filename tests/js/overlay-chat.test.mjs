// The chat overlay's logic: badges, emotes in the message, banned words, the last N messages
// (src/ttlp/api/ui/overlay/chat.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { badgesOf, ChatLog, chatName, messageParts } from "../../src/ttlp/api/ui/overlay/chat.js";
import { bannedMatcher } from "../../src/ttlp/api/ui/overlay/words.js";

const CAT = "https://p16-sign-va.tiktokcdn.com/webcast-va/emote_cat_dance~tplv-resize:100:100.webp";
const HEART = "https://p16-sign-va.tiktokcdn.com/webcast-va/emote_heart_eyes~tplv-resize:100:100.webp";

describe("badges", () => {
  test("moderator, subscriber and fans level, in that order", () => {
    assert.deepEqual(
      badgesOf({ isModerator: true, isSubscriber: true, teamMemberLevel: 12 }).map((b) => [b.kind, b.text]),
      [["moderator", "MOD"], ["subscriber", "SUB"], ["fans", "Lv12"]],
    );
    assert.deepEqual(badgesOf({ isModerator: false, teamMemberLevel: 0 }), []);
    assert.deepEqual(badgesOf(undefined), []);
  });

  test("the name: display name, else the handle", () => {
    assert.equal(chatName({ uniqueId: "zoe", displayName: "Zoë" }), "Zoë");
    assert.equal(chatName({ uniqueId: "zoe" }), "@zoe");
  });
});

describe("message parts", () => {
  const payload = {
    message: "this drop [cat_dance] [heart_eyes]",
    emotes: [
      { emoteId: "2", emoteImageUrl: HEART, placeholderIndex: 22 },
      { emoteId: "1", emoteImageUrl: CAT, placeholderIndex: 10 },
    ],
  };

  test("each [name] placeholder becomes its emote's picture, in the message's order", () => {
    assert.deepEqual(messageParts(payload), [{ text: "this drop " }, { emote: CAT, id: "1" }, { text: " " }, { emote: HEART, id: "2" }]);
  });

  test("an emote without a placeholder at its index is inserted there", () => {
    assert.deepEqual(messageParts({ message: "hi there", emotes: [{ emoteId: "1", emoteImageUrl: CAT, placeholderIndex: 2 }] }), [
      { text: "hi" },
      { emote: CAT, id: "1" },
      { text: " there" },
    ]);
  });

  test("an emote without an index goes at the end; an index past the end too", () => {
    const parts = messageParts({ message: "yo", emotes: [{ emoteId: "1", emoteImageUrl: CAT }, { emoteId: "2", emoteImageUrl: HEART, placeholderIndex: 99 }] });
    assert.deepEqual(parts, [{ text: "yo" }, { emote: HEART, id: "2" }, { emote: CAT, id: "1" }]);
  });

  test("pictures off, or not from TikTok's CDN: the text stays as written", () => {
    assert.deepEqual(messageParts(payload, { images: false }), [{ text: payload.message }]);
    const evil = { message: "x [e]", emotes: [{ emoteId: "1", emoteImageUrl: "https://evil.example/e.png", placeholderIndex: 2 }] };
    assert.deepEqual(messageParts(evil), [{ text: "x [e]" }]);
  });

  test("an index inside an emoji does not cut it in two", () => {
    const parts = messageParts({ message: "a😀b", emotes: [{ emoteId: "1", emoteImageUrl: CAT, placeholderIndex: 2 }] });
    assert.deepEqual(parts, [{ text: "a😀" }, { emote: CAT, id: "1" }, { text: "b" }]);
  });

  test("banned words are masked in the text parts; HTML stays text", () => {
    const mask = bannedMatcher(["darn"]).mask;
    assert.deepEqual(messageParts({ message: "darn <img src=x onerror=alert(1)>" }, { mask }), [{ text: "**** <img src=x onerror=alert(1)>" }]);
  });
});

describe("the last N messages", () => {
  const chat = (i) => ({ eventId: `e${i}`, eventType: "CHAT", payload: { message: `m${i}` } });

  test("keeps the newest maxMessages, oldest first, each event once", () => {
    const log = new ChatLog(3);
    for (let i = 1; i <= 5; i += 1) log.add(chat(i));
    assert.equal(log.add(chat(5)), false);
    assert.equal(log.add({ eventId: "g", eventType: "GIFT" }), false);
    assert.deepEqual(log.items.map((e) => e.eventId), ["e3", "e4", "e5"]);
    assert.deepEqual([...log.ids], ["e3", "e4", "e5"]);
  });

  test("reset starts from the server's recent messages; a smaller max trims at once", () => {
    const log = new ChatLog(5);
    log.add(chat(9));
    log.reset([chat(1), chat(2), chat(3)]);
    assert.deepEqual(log.items.map((e) => e.eventId), ["e1", "e2", "e3"]);
    log.setMax(2);
    assert.deepEqual(log.items.map((e) => e.eventId), ["e2", "e3"]);
    log.setMax("nonsense");
    assert.equal(log.items.length, 1);
  });
});
