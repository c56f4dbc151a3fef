// The leaderboard and the goal bar: the server's totals, then the feed's gifts, likes, follows
// and subscriptions, a streak counted once (src/ttlp/api/ui/overlay/leaderboard.js, goal.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Goal, goalDelta } from "../../src/ttlp/api/ui/overlay/goal.js";
import { Leaderboard, MAX_GIFTERS } from "../../src/ttlp/api/ui/overlay/leaderboard.js";

const ZOE = { userId: "111", uniqueId: "zoe.petals", displayName: "Zoë", avatarUrl: "https://p16.tiktokcdn.com/a.webp" };
const OWL = { userId: "222", uniqueId: "night.owl" };

function gift(user, count, coins, { active = false, end = true, streak = true } = {}) {
  return { eventType: "GIFT", user, payload: { giftId: 1, giftName: "Galaxy", giftCount: count, coins, isGiftStreak: streak, streakActive: active, streakEnd: end } };
}

/** A streak of ``n`` frames of ``each`` coins: only its last frame completes it. */
function streak(user, n, each) {
  return Array.from({ length: n }, (_, i) => gift(user, i + 1, each * (i + 1), { active: i < n - 1, end: i === n - 1 }));
}

describe("leaderboard", () => {
  test("starts from the server's rows and adds completed gifts: a streak counts once, its total", () => {
    const board = new Leaderboard();
    board.load([{ userId: "222", uniqueId: "night.owl", coins: 3000, gifts: 2 }]);
    const changed = streak(ZOE, 5, 1000).map((ev) => board.add(ev));
    assert.deepEqual(changed, [false, false, false, false, true]);
    // gifts: gifts sent (the streak's five), as the server counts them
    assert.deepEqual(board.top(5).map((r) => [r.uniqueId, r.coins, r.gifts]), [["zoe.petals", 5000, 5], ["night.owl", 3000, 2]]);
    assert.equal(board.top(5)[0].avatarUrl, ZOE.avatarUrl);
  });

  test("a late frame of a closed streak and other events count for nothing", () => {
    const board = new Leaderboard();
    assert.equal(board.add(gift(ZOE, 9, 9000, { active: false, end: false })), false);
    assert.equal(board.add({ eventType: "CHAT", user: ZOE, payload: { message: "hi" } }), false);
    assert.equal(board.add(gift({ userId: "0", uniqueId: "system" }, 1, 5)), false);
    assert.deepEqual(board.top(5), []);
  });

  test("top(n): by coins, then user id (as the server orders them); at most n rows", () => {
    const board = new Leaderboard();
    board.add(gift(OWL, 1, 10, { streak: false }));
    board.add(gift(ZOE, 1, 10, { streak: false }));
    board.add(gift({ userId: "333", uniqueId: "abc" }, 1, 10, { streak: false }));
    board.add(gift({ userId: "444", uniqueId: "big" }, 1, 99, { streak: false }));
    assert.deepEqual(board.top(3).map((r) => r.uniqueId), ["big", "zoe.petals", "night.owl"]);
  });

  test("remembers at most MAX_GIFTERS people, forgetting the lowest", () => {
    const board = new Leaderboard();
    board.load(Array.from({ length: MAX_GIFTERS }, (_, i) => ({ userId: `9${i}`, coins: i + 10 })));
    board.add(gift(ZOE, 1, 50_000, { streak: false }));
    assert.equal(board.rows.size, MAX_GIFTERS);
    assert.equal(board.rows.has("90"), false); // the lowest
    assert.equal(board.top(1)[0].userId, ZOE.userId);
  });
});

describe("goal", () => {
  test("each metric counts its own events", () => {
    const like = { eventType: "LIKE", payload: { likeCount: 15, totalLikeCount: 900 } };
    const follow = { eventType: "FOLLOW", payload: {} };
    const sub = { eventType: "SUBSCRIBE", payload: {} };
    const done = gift(ZOE, 5, 5000);
    const open = gift(ZOE, 4, 4000, { active: true, end: false });
    const table = ["likes", "coins", "follows", "subscriptions"].map((m) => [like, follow, sub, done, open].map((ev) => goalDelta(m, ev)));
    assert.deepEqual(table, [
      [15, 0, 0, 0, 0],
      [0, 0, 0, 5000, 0],
      [0, 1, 0, 0, 0],
      [0, 0, 1, 0, 0],
    ]);
  });

  test("from the server's current towards the target; reached at the target; the bar never overfills", () => {
    const goal = new Goal();
    goal.load({ metric: "follows", current: 8, target: 10, title: "" });
    assert.deepEqual(goal.view(), { title: "Follows goal", current: 8, target: 10, ratio: 0.8, reached: false });
    goal.add({ eventType: "FOLLOW" });
    goal.add({ eventType: "FOLLOW" });
    goal.add({ eventType: "FOLLOW" });
    assert.deepEqual(goal.view(), { title: "Follows goal", current: 11, target: 10, ratio: 1, reached: true });
    goal.load({ metric: "likes", current: 0, target: 0, title: "Tap tap!" });
    assert.deepEqual(goal.view(), { title: "Tap tap!", current: 0, target: 0, ratio: 1, reached: false });
  });
});
