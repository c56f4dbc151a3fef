// The live feed's memory: streak folding (live and in paged histories), the recent users,
// trimming, the panel's filters (src/ttlp/api/ui/feedlog.js).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  allChipsOn,
  CHIP_TYPES,
  chipOf,
  feedFilter,
  foldEvent,
  foldHistory,
  isOpenStreak,
  matches,
  newFeedLog,
  onlyChip,
  RECENT_USERS,
  streakKey,
  trimLog,
  visibleEntries,
} from "../../src/ttlp/api/ui/feedlog.js";

const ZOE = { userId: "111", uniqueId: "zoe.petals", displayName: "Zoe" };
const OWL = { userId: "222", uniqueId: "night.owl", displayName: "Night Owl" };

let next = 0;
function event(eventType, user, payload = {}, sessionId = "s1") {
  next += 1;
  return { eventId: `e${next}`, eventType, sessionId, user, payload };
}

/** The frames of one gift streak: ×1 … ×n, the last one the end frame. */
function streak(user, { giftId = 6064, n = 5, sessionId = "s1", giftName = "Galaxy" } = {}) {
  return Array.from({ length: n }, (_, i) =>
    event("GIFT", user, { giftId, giftName, giftCount: i + 1, coins: 1000 * (i + 1), isGiftStreak: true, streakEnd: i === n - 1 }, sessionId),
  );
}

const counts = (log) => log.entries.map((e) => e.ev.payload.giftCount);

describe("streak folding", () => {
  test("the frames of a streak fold into one entry that grows and ends at streakEnd", () => {
    const log = newFeedLog();
    const frames = streak(ZOE);
    const seen = [];
    for (const frame of frames) {
      const entry = foldEvent(log, frame);
      seen.push([entry.ev.payload.giftCount, entry.ver, isOpenStreak(entry)]);
    }
    assert.deepEqual(seen, [
      [1, 0, true],
      [2, 1, true],
      [3, 2, true],
      [4, 3, true],
      [5, 4, false],
    ]);
    assert.equal(log.entries.length, 1);
    assert.equal(log.entries[0].ev, frames[4]);
    assert.equal(log.entries[0].seq, 1);
    assert.equal(log.streaks.size, 0); // closed
    assert.equal(log.received, 5);
    assert.equal(log.seq, 1);
  });

  test("after its end frame the same user and gift start a new entry", () => {
    const log = newFeedLog();
    for (const frame of [...streak(ZOE, { n: 3 }), ...streak(ZOE, { n: 2 })]) foldEvent(log, frame);
    assert.deepEqual(counts(log), [3, 2]);
    assert.deepEqual(log.entries.map((e) => e.seq), [1, 2]);
  });

  test("streaks of different users do not merge, even interleaved", () => {
    const log = newFeedLog();
    const a = streak(ZOE, { n: 3 });
    const b = streak(OWL, { n: 3 });
    for (let i = 0; i < 3; i += 1) {
      foldEvent(log, a[i]);
      foldEvent(log, b[i]);
    }
    assert.deepEqual(log.entries.map((e) => [e.ev.user.uniqueId, e.ev.payload.giftCount]), [
      ["zoe.petals", 3],
      ["night.owl", 3],
    ]);
  });

  test("streaks of different gifts by one user do not merge", () => {
    const log = newFeedLog();
    const galaxy = streak(ZOE, { giftId: 6064, n: 2 });
    const rose = streak(ZOE, { giftId: 5655, n: 2, giftName: "Rose" });
    for (const frame of [galaxy[0], rose[0], galaxy[1], rose[1]]) foldEvent(log, frame);
    assert.deepEqual(log.entries.map((e) => [e.ev.payload.giftName, e.ev.payload.giftCount]), [
      ["Galaxy", 2],
      ["Rose", 2],
    ]);
  });

  test("the same streak in two sessions (a replay beside the live one) does not merge", () => {
    const log = newFeedLog();
    const live = streak(ZOE, { n: 2, sessionId: "live" });
    const replay = streak(ZOE, { n: 2, sessionId: "replay" });
    for (const frame of [live[0], replay[0], live[1], replay[1]]) foldEvent(log, frame);
    assert.equal(log.entries.length, 2);
    assert.deepEqual(log.entries.map((e) => e.ev.sessionId), ["live", "replay"]);
  });

  test("a gift that is not streakable is an entry per event", () => {
    const log = newFeedLog();
    for (let i = 0; i < 3; i += 1) foldEvent(log, event("GIFT", ZOE, { giftId: 5655, giftCount: 1, coins: 1, isGiftStreak: false }));
    assert.equal(log.entries.length, 3);
    assert.ok(log.entries.every((e) => e.streakKey === undefined && !isOpenStreak(e)));
    assert.equal(log.streaks.size, 0);
  });

  test("a streak of one frame (its first frame is the end) is a closed entry", () => {
    const log = newFeedLog();
    const [only] = streak(ZOE, { n: 1 });
    const entry = foldEvent(log, only);
    assert.equal(isOpenStreak(entry), false);
    assert.equal(log.streaks.size, 0);
    foldEvent(log, streak(ZOE, { n: 2 })[0]);
    assert.equal(log.entries.length, 2);
  });

  test("other events between the frames stay entries of their own", () => {
    const log = newFeedLog();
    const [a, b] = streak(ZOE, { n: 2 });
    foldEvent(log, a);
    foldEvent(log, event("CHAT", OWL, { message: "wow" }));
    foldEvent(log, b);
    assert.deepEqual(log.entries.map((e) => e.ev.eventType), ["GIFT", "CHAT"]);
    assert.equal(log.entries[0].ev, b);
  });

  test("streakKey: session, user and gift", () => {
    assert.equal(streakKey(event("GIFT", ZOE, { giftId: 5655 }, "s9")), "s9:111:5655");
  });
});

describe("recent users", () => {
  test("users are kept most recent last; system events (user 0, none) are not users", () => {
    const log = newFeedLog();
    foldEvent(log, event("CHAT", ZOE, { message: "hi" }));
    foldEvent(log, event("CHAT", OWL, { message: "hey" }));
    foldEvent(log, event("LIKE", ZOE, { likeCount: 3 }));
    foldEvent(log, event("CONNECTED", { userId: "0" }, {}));
    foldEvent(log, event("STREAM_END", undefined, {}));
    assert.deepEqual([...log.users.keys()], ["222", "111"]);
    assert.equal(log.received, 5);
  });

  test("at most RECENT_USERS are kept, the oldest dropped", () => {
    const log = newFeedLog();
    for (let i = 0; i <= RECENT_USERS; i += 1) foldEvent(log, event("JOIN", { userId: `u${i}`, uniqueId: `u${i}` }));
    assert.equal(log.users.size, RECENT_USERS);
    assert.equal(log.users.has("u0"), false);
    assert.equal(log.users.has(`u${RECENT_USERS}`), true);
  });
});

describe("trimLog", () => {
  test("drops the oldest entries beyond the cap", () => {
    const log = newFeedLog();
    for (let i = 0; i < 5; i += 1) foldEvent(log, event("CHAT", ZOE, { message: `m${i}` }));
    trimLog(log, 3);
    assert.deepEqual(log.entries.map((e) => e.ev.payload.message), ["m2", "m3", "m4"]);
    trimLog(log, 3);
    assert.equal(log.entries.length, 3);
  });

  test("an open streak trimmed away is forgotten: its next frame starts a new entry", () => {
    const log = newFeedLog();
    const frames = streak(ZOE, { n: 3 });
    foldEvent(log, frames[0]);
    foldEvent(log, event("CHAT", OWL, { message: "a" }));
    foldEvent(log, event("CHAT", OWL, { message: "b" }));
    trimLog(log, 2);
    assert.equal(log.streaks.size, 0);
    foldEvent(log, frames[1]);
    assert.deepEqual(log.entries.map((e) => e.ev.eventType), ["CHAT", "CHAT", "GIFT"]);
    assert.equal(log.entries[2].ev.payload.giftCount, 2);
  });
});

describe("filters", () => {
  const all = new Set(CHIP_TYPES);

  test("chipOf: lifecycle and RAW events share the SYSTEM chip", () => {
    for (const type of ["CONNECTED", "DISCONNECTED", "ERROR", "STREAM_END", "RAW"]) assert.equal(chipOf(type), "SYSTEM");
    assert.equal(chipOf("GIFT"), "GIFT");
    assert.equal(chipOf("ROOM_USER"), "ROOM_USER");
  });

  test("feedFilter trims and lower-cases the search, strips the @ of the user", () => {
    const filter = feedFilter({ types: all, search: "  Казани ", user: " @Zoe.Petals " });
    assert.deepEqual(filter, { types: all, q: "казани", user: "zoe.petals" });
  });

  test("chips: an event shows when its chip is on", () => {
    const filter = feedFilter({ types: new Set(["CHAT", "SYSTEM"]) });
    assert.equal(matches(event("CHAT", ZOE, { message: "x" }), filter), true);
    assert.equal(matches(event("ERROR", undefined, { code: "X" }), filter), true);
    assert.equal(matches(event("GIFT", ZOE, {}), filter), false);
  });

  test("user: by handle (any case) or by id", () => {
    const byHandle = feedFilter({ types: all, user: "@ZOE.petals" });
    const byId = feedFilter({ types: all, user: "222" });
    assert.equal(matches(event("CHAT", ZOE, {}), byHandle), true);
    assert.equal(matches(event("CHAT", OWL, {}), byHandle), false);
    assert.equal(matches(event("CHAT", OWL, {}), byId), true);
    assert.equal(matches(event("STREAM_END", undefined, {}), byHandle), false);
  });

  test("search: message, gift name, handle and display name, any case", () => {
    const find = (search, ev) => matches(ev, feedFilter({ types: all, search }));
    assert.equal(find("привет", event("CHAT", ZOE, { message: "Привет из Казани!" })), true);
    assert.equal(find("galaxy", event("GIFT", ZOE, { giftName: "Galaxy" })), true);
    assert.equal(find("night", event("JOIN", OWL, {})), true);
    assert.equal(find("owl", event("JOIN", { userId: "3", uniqueId: "x", displayName: "The Owl" }, {})), true);
    assert.equal(find("lion", event("GIFT", ZOE, { giftName: "Rose" })), false);
  });

  test("visibleEntries: newest first, and how many are newer than the list had", () => {
    const log = newFeedLog();
    for (const m of ["a", "b", "c"]) foldEvent(log, event("CHAT", ZOE, { message: m }));
    foldEvent(log, event("LIKE", ZOE, { likeCount: 1 }));
    const filter = feedFilter({ types: new Set(["CHAT"]) });
    const first = visibleEntries(log.entries, filter);
    assert.deepEqual(first.items.map((e) => e.ev.payload.message), ["c", "b", "a"]);
    assert.equal(first.added, 0);
    const seenUpTo = log.seq;
    foldEvent(log, event("CHAT", ZOE, { message: "d" }));
    foldEvent(log, event("LIKE", ZOE, { likeCount: 1 }));
    foldEvent(log, event("CHAT", ZOE, { message: "e" }));
    const later = visibleEntries(log.entries, filter, seenUpTo);
    assert.deepEqual(later.items.map((e) => e.ev.payload.message), ["e", "d", "c", "b", "a"]);
    assert.equal(later.added, 2);
  });
});

describe("a streak the ingest closed by its timeout", () => {
  // The ingest's timeout frame is the streak's end; TikTok's own end frame, late, comes marked
  // streakClosed: neither active nor an end (README, "Streaks, silence and gaps").
  const late = (user, giftCount) => event("GIFT", user, { giftId: 6064, giftName: "Galaxy", giftCount, isGiftStreak: true, streakActive: false, streakEnd: false });

  test("its late frame is an entry of its own that is not open and opens nothing", () => {
    const log = newFeedLog();
    for (const frame of streak(ZOE, { n: 3 })) foldEvent(log, frame);
    const entry = foldEvent(log, late(ZOE, 4));
    assert.equal(isOpenStreak(entry), false);
    assert.equal(log.streaks.size, 0);
    foldEvent(log, streak(ZOE, { n: 1 })[0]); // the next streak of the same gift: its own entry
    assert.deepEqual(counts(log), [3, 4, 1]);
  });
});

describe("foldHistory: a paged history folded as the feed folds it", () => {
  const fixture = readFileSync(new URL("../fixtures/unified-events.ndjson", import.meta.url), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
  const streakFrames = fixture.filter((ev) => ev.eventType === "GIFT" && ev.payload.isGiftStreak);
  const shape = (entries) => entries.map((e) => [e.ev.eventId, isOpenStreak(e)]);

  test("the fixture's streaks (Rose ×5, Galaxy ×5) are one entry each, at their end frame", () => {
    assert.equal(streakFrames.length, 10); // else this test proves nothing
    const entries = foldHistory(fixture);
    assert.equal(entries.length, fixture.length - 8);
    const gifts = entries.filter((e) => e.ev.eventType === "GIFT").map((e) => [e.ev.payload.giftName, e.ev.payload.giftCount, isOpenStreak(e)]);
    assert.deepEqual(gifts, [
      ["Rose", 5, false],
      ["Lion", 1, false],
      ["Galaxy", 5, false],
      ["Money Gun", 1, false],
    ]);
  });

  test("oldest first, any page size: a streak cut by a page boundary is one open entry that grows", () => {
    const whole = shape(foldHistory(fixture));
    for (let size = 1; size <= fixture.length; size += 1) {
      const loaded = [];
      for (let at = 0; at < fixture.length; at += size) {
        loaded.push(...fixture.slice(at, at + size));
        const entries = foldHistory(loaded);
        const keys = entries.filter((e) => e.streakKey).map((e) => e.streakKey);
        assert.equal(new Set(keys).size, keys.length, `size ${size}: a streak split into two entries`);
        const last = loaded.at(-1);
        const cut = last.eventType === "GIFT" && last.payload.isGiftStreak && !last.payload.streakEnd;
        if (cut) assert.equal(isOpenStreak(entries.find((e) => e.streakKey === streakKey(last))), true);
      }
      assert.deepEqual(shape(foldHistory(loaded)), whole, `page size ${size}`);
    }
  });

  test("newest first (a user's history): entries newest first, a streak shows its end frame at once", () => {
    const newest = [...fixture].reverse();
    const whole = foldHistory(fixture);
    for (let size = 1; size <= newest.length; size += 1) {
      const loaded = [];
      for (let at = 0; at < newest.length; at += size) {
        loaded.push(...newest.slice(at, at + size));
        const entries = foldHistory(loaded, { newestFirst: true });
        const keys = entries.filter((e) => e.streakKey).map((e) => e.streakKey);
        assert.equal(new Set(keys).size, keys.length, `size ${size}: a streak split into two entries`);
        // Every streak entry loaded so far shows the newest frame loaded of it: its end frame.
        for (const e of entries.filter((x) => x.streakKey)) assert.equal(e.ev.payload.streakEnd, true, `size ${size}`);
      }
      assert.deepEqual(shape(foldHistory(loaded, { newestFirst: true })), shape(whole).reverse(), `page size ${size}`);
    }
  });

  test("the input is not reordered in place", () => {
    const newest = [...fixture].reverse();
    const copy = [...newest];
    foldHistory(newest, { newestFirst: true });
    assert.deepEqual(newest, copy);
  });
});

describe("only this type", () => {
  test("onlyChip leaves one chip on; allChipsOn says when every chip is", () => {
    assert.deepEqual([...onlyChip("CHAT")], ["CHAT"]);
    assert.equal(allChipsOn(onlyChip("CHAT")), false);
    assert.equal(allChipsOn(new Set(CHIP_TYPES)), true);
    assert.equal(allChipsOn(new Set(CHIP_TYPES.filter((t) => t !== "LIKE"))), false);
  });
});
