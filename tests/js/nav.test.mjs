// The shell's plain logic: roles, routes, stream picking, palette filtering
// (src/ttlp/api/ui/nav.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { mayUse, moveActive, paletteMatches, parseHash, pickStream, selectedUserId, streamHandles } from "../../src/ttlp/api/ui/nav.js";

describe("roles", () => {
  test("a role may use what it or a lower role may", () => {
    const moderator = { role: "MODERATOR" };
    assert.equal(mayUse(moderator, "VIEWER"), true);
    assert.equal(mayUse(moderator, "MODERATOR"), true);
    assert.equal(mayUse(moderator, "STREAMER"), false);
    assert.equal(mayUse(null, "VIEWER"), false);
  });
});

describe("routes", () => {
  test("parseHash: the view and its decoded parameters", () => {
    assert.deepEqual(parseHash("#/moderate/123"), { id: "moderate", params: ["123"] });
    assert.deepEqual(parseHash("#/session/a%2Fb/"), { id: "session", params: ["a/b"] });
    assert.deepEqual(parseHash("#rules"), { id: "rules", params: [] });
    assert.deepEqual(parseHash(""), { id: "", params: [] });
  });

  test("selectedUserId: only in the moderator view", () => {
    assert.equal(selectedUserId("#/moderate/7441"), "7441");
    assert.equal(selectedUserId("#/moderate"), null);
    assert.equal(selectedUserId("#/session/7441"), null);
  });
});

describe("streams", () => {
  test("streamHandles: the scopes without *, then the stored streams, once each", () => {
    const streams = [{ uniqueId: "luna.beats" }, { uniqueId: "dj.nova" }, { uniqueId: null }];
    assert.deepEqual(streamHandles(["*"], streams), ["luna.beats", "dj.nova"]);
    assert.deepEqual(streamHandles(["luna.beats"], streams), ["luna.beats", "dj.nova"]);
  });

  test("pickStream: the saved one when offered, else the first, else none", () => {
    assert.equal(pickStream(["a", "b"], "b"), "b");
    assert.equal(pickStream(["a", "b"], "gone"), "a");
    assert.equal(pickStream([], "a"), null);
  });
});

describe("palette", () => {
  const items = [{ label: "Go to Live" }, { label: "@zoe.petals · Zoe" }, { label: "Kick: @zoe.petals" }, { label: "Go to Sessions" }];

  test("paletteMatches: contains the query, any case, a leading @ ignored", () => {
    assert.deepEqual(paletteMatches(items, "@ZOE").map((x) => x.label), ["@zoe.petals · Zoe", "Kick: @zoe.petals"]);
    assert.deepEqual(paletteMatches(items, " sessions ").map((x) => x.label), ["Go to Sessions"]);
    assert.deepEqual(paletteMatches(items, "@go to").map((x) => x.label), ["Go to Live", "Go to Sessions"]);
    assert.equal(paletteMatches(items, "").length, 4);
    assert.equal(paletteMatches(items, "", 2).length, 2);
  });

  test("moveActive: arrows move within the rows, anything else only clamps", () => {
    assert.equal(moveActive(0, "ArrowDown", 3), 1);
    assert.equal(moveActive(2, "ArrowDown", 3), 2);
    assert.equal(moveActive(1, "ArrowUp", 3), 0);
    assert.equal(moveActive(0, "ArrowUp", 3), 0);
    assert.equal(moveActive(5, "", 2), 1);
    assert.equal(moveActive(0, "ArrowDown", 0), 0);
  });
});
