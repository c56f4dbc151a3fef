// The Forwarding page's plain logic (src/ttlp/api/ui/forwardlogic.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  countCells,
  countsText,
  deliveriesQuery,
  EVENT_TYPES,
  formFromTarget,
  mayRedeliver,
  nextRetryText,
  scopeOptions,
  scopeText,
  shortId,
  statusText,
  streakText,
  targetBody,
  testResultText,
  testType,
  toggleType,
  typesText,
  withDelivery,
  withPage,
} from "../../src/ttlp/api/ui/forwardlogic.js";

const TARGET = {
  id: 3,
  name: "crm",
  url: "https://hooks.example.com/ttlp",
  scope: "luna.beats",
  eventTypes: ["GIFT", "FOLLOW"],
  enabled: false,
  streakEndOnly: false,
  createdBy: "luna",
  counts: { delivered: 12, retried: 3, deadLettered: 1, pending: 2 },
};

describe("the target form", () => {
  test("a new target: every type, enabled, gift streaks forwarded once", () => {
    assert.deepEqual(formFromTarget(null, { scope: "luna.beats" }), {
      editing: null,
      name: "",
      url: "",
      scope: "luna.beats",
      eventTypes: [],
      streakEndOnly: true,
      enabled: true,
    });
  });

  test("an existing target's form keeps what it has, and a copy of its types", () => {
    const form = formFromTarget(TARGET);
    assert.deepEqual(form, {
      editing: 3,
      name: "crm",
      url: "https://hooks.example.com/ttlp",
      scope: "luna.beats",
      eventTypes: ["GIFT", "FOLLOW"],
      streakEndOnly: false,
      enabled: false,
    });
    form.eventTypes.push("CHAT");
    assert.deepEqual(TARGET.eventTypes, ["GIFT", "FOLLOW"]);
  });

  test("the body: trimmed, a leading @ dropped, types in a stable order, no secret", () => {
    const form = { ...formFromTarget(TARGET), name: "  crm 2 ", url: " https://x.example/in ", scope: "@luna.beats", eventTypes: ["FOLLOW", "CHAT", "GIFT"] };
    assert.deepEqual(targetBody(form), {
      name: "crm 2",
      url: "https://x.example/in",
      scope: "luna.beats",
      eventTypes: ["CHAT", "GIFT", "FOLLOW"],
      streakEndOnly: false,
      enabled: false,
    });
    assert.equal("secret" in targetBody(form), false);
    assert.equal(targetBody({ ...form, scope: "*" }).scope, "*");
  });

  test("toggling a type adds or removes it once, in the list's order", () => {
    assert.deepEqual(toggleType([], "LIKE", true), ["LIKE"]);
    assert.deepEqual(toggleType(["LIKE"], "CHAT", true), ["CHAT", "LIKE"]);
    assert.deepEqual(toggleType(["CHAT", "LIKE"], "CHAT", true), ["CHAT", "LIKE"]);
    assert.deepEqual(toggleType(["CHAT", "LIKE"], "CHAT", false), ["LIKE"]);
    assert.deepEqual(toggleType(["LIKE"], "GIFT", false), ["LIKE"]);
  });

  test("every UnifiedEvent type can be chosen", () => {
    assert.equal(EVENT_TYPES.length, 15);
    for (const t of ["CHAT", "GIFT", "LIKE", "FOLLOW", "SHARE", "JOIN", "SUBSCRIBE", "EMOTE", "BATTLE", "CONNECTED", "DISCONNECTED", "ERROR", "RAW", "ROOM_USER", "STREAM_END"]) {
      assert.ok(EVENT_TYPES.includes(t), t);
    }
  });

  test("scopes: the account's handles, or * and the stream; the edited target's own too", () => {
    assert.deepEqual(scopeOptions(["luna.beats", "nova"], "nova"), ["luna.beats", "nova"]);
    assert.deepEqual(scopeOptions(["*"], "luna.beats"), ["*", "luna.beats"]);
    assert.deepEqual(scopeOptions(["*"], null), ["*"]);
    assert.deepEqual(scopeOptions(["*"], "luna.beats", "nova"), ["*", "luna.beats", "nova"]);
    assert.deepEqual(scopeOptions(["*"], "luna.beats", "luna.beats"), ["*", "luna.beats"]);
  });
});

describe("a target's row", () => {
  test("scope, types, status and the streak switch in words", () => {
    assert.equal(scopeText("*"), "every streamer");
    assert.equal(scopeText("luna.beats"), "@luna.beats");
    assert.equal(typesText([]), "every type");
    assert.equal(typesText(["GIFT", "FOLLOW"]), "GIFT, FOLLOW");
    assert.equal(statusText(TARGET), "paused");
    assert.equal(statusText({ ...TARGET, enabled: true }), "active");
    assert.equal(streakText(TARGET), "gift streaks: every frame");
    assert.equal(streakText({ ...TARGET, streakEndOnly: true }), "gift streaks: end only");
    assert.equal(streakText({ ...TARGET, eventTypes: [], streakEndOnly: true }), "gift streaks: end only");
    assert.equal(streakText({ ...TARGET, eventTypes: ["CHAT"] }), ""); // no gifts: nothing to say
  });

  test("counts, zero when a target has none yet", () => {
    assert.deepEqual(countCells(TARGET.counts), { delivered: 12, retried: 3, dead: 1, pending: 2 });
    assert.deepEqual(countCells(undefined), { delivered: 0, retried: 0, dead: 0, pending: 0 });
    assert.equal(countsText(TARGET.counts), "12 delivered · 3 retried · 1 dead · 2 pending");
  });
});

describe("the test event", () => {
  test("its type: the target's first (alphabetically), CHAT for every type", () => {
    assert.equal(testType(TARGET), "FOLLOW");
    assert.equal(testType({ ...TARGET, eventTypes: [] }), "CHAT");
    assert.deepEqual(TARGET.eventTypes, ["GIFT", "FOLLOW"]); // not sorted in place
  });

  test("a 2xx answer, with how long it took", () => {
    const shown = testResultText({ ok: true, statusCode: 204, latencyMs: 34.6, error: null, eventType: "GIFT", eventId: "a", responseExcerpt: "" });
    assert.deepEqual(shown, { ok: true, text: "GIFT test event: the receiver answered 204 in 35 ms" });
  });

  test("a refusal by the receiver, with the start of what it said", () => {
    const shown = testResultText({ ok: false, statusCode: 401, latencyMs: 1500, error: "HTTP 401", eventType: "CHAT", responseExcerpt: "bad signature" });
    assert.deepEqual(shown, { ok: false, text: "CHAT test event: the receiver answered 401 in 1.5 s — bad signature" });
    const long = testResultText({ ok: false, statusCode: 500, latencyMs: 2, error: "HTTP 500", eventType: "CHAT", responseExcerpt: "x".repeat(500) });
    assert.ok(long.text.endsWith(`— ${"x".repeat(200)}`));
  });

  test("no answer at all: the reason", () => {
    const shown = testResultText({ ok: false, statusCode: null, latencyMs: 15000, error: "no answer within 15 s", eventType: "CHAT", responseExcerpt: null });
    assert.deepEqual(shown, { ok: false, text: "CHAT test event: no answer within 15 s (after 15.0 s)" });
  });
});

describe("deliveries", () => {
  const NOW = Date.parse("2026-12-07T10:00:00Z");
  const pending = (at) => ({ id: 9, status: "pending", nextAttemptAt: at });

  test("the next retry: due, soon, later, held while paused, none once finished", () => {
    assert.equal(nextRetryText(pending("2026-12-07T09:59:00Z"), false, NOW), "now");
    assert.equal(nextRetryText(pending("2026-12-07T10:00:00.300Z"), false, NOW), "now");
    assert.equal(nextRetryText(pending("2026-12-07T10:00:12Z"), false, NOW), "in 12 s");
    assert.equal(nextRetryText(pending("2026-12-07T10:06:40Z"), false, NOW), "in 7 min");
    assert.equal(nextRetryText(pending("2026-12-07T13:00:00Z"), false, NOW), "in 3 h");
    assert.equal(nextRetryText(pending("2026-12-07T10:00:12Z"), true, NOW), "held (paused)");
    assert.equal(nextRetryText({ id: 9, status: "dead", nextAttemptAt: null }, false, NOW), "—");
    assert.equal(nextRetryText({ id: 9, status: "delivered", nextAttemptAt: null }, true, NOW), "—");
  });

  test("only a finished delivery can be sent again", () => {
    assert.equal(mayRedeliver({ status: "dead" }), true);
    assert.equal(mayRedeliver({ status: "delivered" }), true);
    assert.equal(mayRedeliver({ status: "pending" }), false);
  });

  test("the page query: a known status or none, the cursor when paging", () => {
    assert.deepEqual(deliveriesQuery(""), { status: "", before: "", limit: 50 });
    assert.deepEqual(deliveriesQuery("dead", 120, 20), { status: "dead", before: 120, limit: 20 });
    assert.deepEqual(deliveriesQuery("<script>"), { status: "", before: "", limit: 50 });
  });

  test("pages: replaced, or appended without repeats", () => {
    const first = [{ id: 5 }, { id: 4 }];
    assert.deepEqual(withPage(first, { items: [{ id: 9 }] }, false), [{ id: 9 }]);
    assert.deepEqual(withPage(first, { items: [{ id: 4 }, { id: 3 }] }, true), [{ id: 5 }, { id: 4 }, { id: 3 }]);
  });

  test("a redelivered row takes the place of the old one", () => {
    const items = [{ id: 5, status: "dead", attempts: 8 }, { id: 4, status: "delivered", attempts: 1 }];
    assert.deepEqual(withDelivery(items, { id: 5, status: "pending", attempts: 0 }), [
      { id: 5, status: "pending", attempts: 0 },
      { id: 4, status: "delivered", attempts: 1 },
    ]);
  });

  test("event ids are shortened for the table", () => {
    assert.equal(shortId("0123456789abcdef"), "0123456789ab…");
    assert.equal(shortId("abc"), "abc");
    assert.equal(shortId(null), "");
  });
});
