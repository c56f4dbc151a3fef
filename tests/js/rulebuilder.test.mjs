// The rule builder: conditions ↔ JSON Logic (src/ttlp/api/ui/rulebuilder.js). The cases of
// tests/fixtures/rulebuilder-cases.json are also evaluated by the Python evaluator against
// sample events (tests/unit/test_rulebuilder_cases.py).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  buildCondition,
  changeCheck,
  CHECKS,
  checksFor,
  clauseLogic,
  codePoints,
  conditionText,
  defaultCheck,
  describeClause,
  describeGroup,
  fillFields,
  newClause,
  parseCondition,
  problems,
  readPaths,
  readRaw,
  splitList,
  textFields,
  valueAt,
  valuesRead,
} from "../../src/ttlp/api/ui/rulebuilder.js";

const { cases: CASES } = JSON.parse(readFileSync(new URL("../fixtures/rulebuilder-cases.json", import.meta.url), "utf8"));

const group = (op, ...items) => ({ kind: "group", op, items });
const text = (check, field, value, negate = false) => ({ kind: "cond", check, field, value, negate });
const message = { var: "payload.message" };
const messageOrEmpty = { var: ["payload.message", ""] };

// What GET /rules/placeholders says of a CHAT and a GIFT event (the parts the builder reads).
const CHAT_TYPES = {
  "payload.message": "string",
  "payload.language": "string",
  "user.userId": "string",
  "user.uniqueId": "string",
  "user.displayName": "string",
  "user.followRole": "number",
  "user.isModerator": "boolean",
  "user.isSubscriber": "boolean",
  eventId: "string",
};
const CHAT_PATHS = Object.keys(CHAT_TYPES);
const GIFT_TYPES = { "payload.giftId": "number", "payload.giftName": "string", "payload.giftCount": "number", "payload.coins": "number", "user.uniqueId": "string" };
const GIFT_PATHS = Object.keys(GIFT_TYPES);

describe("the shared cases: builder → JSON Logic → builder", () => {
  for (const c of CASES) {
    test(`${c.name}: builds its JSON Logic`, () => assert.deepEqual(buildCondition(c.builder), c.logic));
    test(`${c.name}: reads back into the same builder tree`, () => assert.deepEqual(parseCondition(c.logic), c.builder));
    test(`${c.name}: the JSON box's text reads back too`, () => assert.deepEqual(readRaw(conditionText(c.builder)), { group: c.builder }));
  }

  test("the cases cover every kind of condition", () => {
    const kinds = new Set();
    const visit = (x) => (x.kind === "group" ? x.items.forEach(visit) : kinds.add(x.check));
    CASES.forEach((c) => visit(c.builder));
    assert.deepEqual([...kinds].sort(), CHECKS.map((c) => c.value).sort());
  });
});

describe("building", () => {
  test("starts with counts the prefix in code points, as the Python evaluator does", () => {
    assert.equal("🔥hype".length, 6); // UTF-16 units
    assert.equal(codePoints("🔥hype"), 5);
    assert.deepEqual(clauseLogic(text("startsWith", "payload.message", "🔥hype")), { "==": [{ substr: [messageOrEmpty, 0, 5] }, "🔥hype"] });
  });

  test("text is kept as typed (spaces matter in a prefix)", () => {
    assert.deepEqual(clauseLogic(text("startsWith", "payload.message", "!so ")), { "==": [{ substr: [messageOrEmpty, 0, 4] }, "!so "] });
  });

  test("a list splits on commas and lines, trims, drops empty entries, keeps strings", () => {
    assert.deepEqual(splitList("Rose,Lion\n  Galaxy ,, \n5655"), ["Rose", "Lion", "Galaxy", "5655"]);
    assert.deepEqual(clauseLogic(text("inList", "payload.giftName", "Rose,Lion\nGalaxy")), { in: [{ var: "payload.giftName" }, ["Rose", "Lion", "Galaxy"]] });
  });

  test("a threshold is a number; text that is not one stays text (and is a problem)", () => {
    assert.deepEqual(clauseLogic({ kind: "cond", check: "coins", value: " 1000 " }), { ">=": [{ var: "payload.coins" }, 1000] });
    assert.deepEqual(clauseLogic({ kind: "cond", check: "likeCount", value: "lots" }), { ">=": [{ var: "payload.likeCount" }, "lots"] });
  });

  test("a field comparison is logic.js's condition", () => {
    assert.deepEqual(clauseLogic({ kind: "cond", check: "compare", field: "payload.giftId", operator: "in", value: "5655, 5827" }), {
      in: [{ var: "payload.giftId" }, [5655, 5827]],
    });
  });

  test("an empty group is true; one condition is itself; nested groups nest", () => {
    assert.equal(buildCondition(group("or")), true);
    const one = text("contains", "payload.message", "hi");
    assert.deepEqual(buildCondition(group("or", one)), { in: ["hi", message] });
    assert.deepEqual(buildCondition(group("and", one, group("or", one))), { and: [{ in: ["hi", message] }, { in: ["hi", message] }] });
  });
});

describe("reading back: only what the builder writes exactly", () => {
  const cannot = [
    ["another operator", { missing: ["payload.coins"] }],
    ["and of one", { and: [{ in: ["hi", message] }] }],
    ["a substr length that is not the prefix's", { "==": [{ substr: [messageOrEmpty, 0, 3] }, "!discord"] }],
    ["a prefix counted in UTF-16 units", { "==": [{ substr: [messageOrEmpty, 0, 6] }, "🔥hype"] }],
    ["substr from elsewhere than 0", { "==": [{ substr: [messageOrEmpty, 1, 8] }, "!discord"] }],
    ["a prefix of a field read as null when absent", { "==": [{ substr: [message, 0, 8] }, "!discord"] }],
    ["a prefix of a field with another default", { "==": [{ substr: [{ var: ["payload.message", "x"] }, 0, 8] }, "!discord"] }],
    ["contains empty text", { in: ["", message] }],
    ["a list entry with a comma", { in: [{ var: "payload.giftName" }, ["a,b"]] }],
    ["a list entry with spaces around", { in: [{ var: "payload.giftName" }, [" Rose"]] }],
    ["a threshold as text", { ">=": [{ var: "payload.coins" }, "1000"] }],
    ["not of a threshold", { "!": { ">=": [{ var: "payload.coins" }, 1000] } }],
    ["not in array form", { "!": [{ in: ["hi", message] }] }],
    ["a double not", { "!": { "!": { in: ["hi", message] } } }],
    ["var with a default", { in: ["hi", { var: ["payload.message", ""] }] }],
    ["a field comparison with a list holding a comma", { in: [{ var: "payload.giftId" }, [1, "a,b"]] }],
    ["a number", 5],
    ["false", false],
  ];
  for (const [name, logic] of cannot) test(`${name} → null (edited as JSON)`, () => assert.equal(parseCondition(logic), null));

  test("a list of numbers or a field compared with a value is a field comparison", () => {
    assert.deepEqual(parseCondition({ in: [{ var: "payload.giftId" }, [5655]] }).items, [
      { kind: "cond", check: "compare", field: "payload.giftId", operator: "in", value: "5655" },
    ]);
    assert.deepEqual(parseCondition({ "<": [{ var: "payload.coins" }, 10] }).items, [{ kind: "cond", check: "compare", field: "payload.coins", operator: "<", value: "10" }]);
    // Not the user check (== true), not an in-list check (no values): the generic form.
    assert.deepEqual(parseCondition({ "==": [{ var: "user.isModerator" }, 1] }).items, [
      { kind: "cond", check: "compare", field: "user.isModerator", operator: "==", value: "1" },
    ]);
    assert.deepEqual(parseCondition({ in: [{ var: "payload.giftName" }, []] }).items, [{ kind: "cond", check: "compare", field: "payload.giftName", operator: "in", value: "" }]);
  });

  test("what the old field/operator/value builder wrote still opens in the builder", () => {
    const old = { and: [{ ">=": [{ var: "payload.coins" }, 1000] }, { "==": [{ var: "payload.giftName" }, "Lion"] }] };
    assert.deepEqual(parseCondition(old), group("and", { kind: "cond", check: "coins", value: "1000" }, { kind: "cond", check: "compare", field: "payload.giftName", operator: "==", value: "Lion" }));
  });

  test("readRaw: not JSON yet, or the tree (null when the builder cannot show it)", () => {
    assert.deepEqual(readRaw("{"), { error: "Not valid JSON yet." });
    assert.deepEqual(readRaw('{"missing":["a"]}'), { group: null });
    assert.deepEqual(readRaw("true"), { group: group("and") });
  });
});

describe("what an event type offers", () => {
  test("text fields: the payload's and the user's strings", () => {
    assert.deepEqual(textFields(CHAT_TYPES), ["payload.message", "payload.language", "user.userId", "user.uniqueId", "user.displayName"]);
    assert.deepEqual(textFields({}), []);
  });

  test("checks: thresholds only where the field exists; text and user checks where there is something to read", () => {
    const names = (list) => list.map((c) => c.value);
    assert.deepEqual(names(checksFor(CHAT_PATHS, CHAT_TYPES)), ["contains", "startsWith", "inList", "user", "compare"]);
    assert.deepEqual(names(checksFor(GIFT_PATHS, GIFT_TYPES)), ["contains", "startsWith", "inList", "coins", "giftCount", "compare"]);
    assert.deepEqual(names(checksFor(["payload.likeCount"], {})), ["likeCount", "compare"]);
    assert.deepEqual(names(checksFor([], {}, "coins")), ["coins", "compare"]); // a condition's own check stays
  });

  test("the default check of a type", () => {
    assert.equal(defaultCheck(GIFT_PATHS, GIFT_TYPES), "coins");
    assert.equal(defaultCheck(["payload.likeCount"], {}), "likeCount");
    assert.equal(defaultCheck(CHAT_PATHS, CHAT_TYPES), "contains");
    assert.equal(defaultCheck(["user.isModerator"], {}), "user");
    assert.equal(defaultCheck(["payload.viewerCount"], {}), "compare");
  });

  test("new conditions: a text check reads the type's main text", () => {
    assert.deepEqual(newClause("startsWith", CHAT_PATHS, CHAT_TYPES), text("startsWith", "payload.message", ""));
    assert.deepEqual(newClause("contains", GIFT_PATHS, GIFT_TYPES), text("contains", "payload.giftName", ""));
    assert.deepEqual(newClause("user"), { kind: "cond", check: "user", flag: "moderator", negate: false });
    assert.deepEqual(newClause("giftCount"), { kind: "cond", check: "giftCount", value: "" });
    assert.deepEqual(newClause("compare", GIFT_PATHS), { kind: "cond", check: "compare", field: "payload.giftId", operator: "==", value: "" });
  });

  test("changing the kind keeps the field and text between text checks, the number between thresholds", () => {
    const typed = text("contains", "user.uniqueId", "bot", true);
    assert.deepEqual(changeCheck(typed, "startsWith", CHAT_PATHS, CHAT_TYPES), text("startsWith", "user.uniqueId", "bot", true));
    assert.deepEqual(changeCheck({ kind: "cond", check: "coins", value: "50" }, "giftCount"), { kind: "cond", check: "giftCount", value: "50" });
    assert.deepEqual(changeCheck(typed, "user"), { kind: "cond", check: "user", flag: "moderator", negate: false });
    assert.deepEqual(changeCheck(typed, "compare", CHAT_PATHS), { kind: "cond", check: "compare", field: "user.uniqueId", operator: "==", value: "" });
  });

  test("fillFields: conditions added before the fields were known get their defaults", () => {
    const g = group("and", text("contains", "", "x"), { kind: "cond", check: "compare", field: "", operator: "==", value: "" }, { kind: "cond", check: "coins", value: "5" });
    assert.equal(fillFields(g, CHAT_PATHS, CHAT_TYPES), 2);
    assert.deepEqual(
      g.items.map((x) => x.field),
      ["payload.message", "payload.message", undefined],
    );
  });
});

describe("problems: what keeps the tree from being saved", () => {
  test("a complete tree has none", () => {
    for (const c of CASES) assert.deepEqual(problems(c.builder), [], c.name);
  });

  test("empty text, an empty list, a threshold that is not a number, a missing field", () => {
    const g = group(
      "and",
      text("startsWith", "payload.message", ""),
      text("inList", "payload.giftName", " , \n"),
      { kind: "cond", check: "coins", value: "" },
      group("or", { kind: "cond", check: "likeCount", value: "many" }, text("contains", "", "x")),
    );
    assert.deepEqual(problems(g), [
      "message starts with “”: enter the text",
      "gift name is one of …: enter at least one value (comma or line separated)",
      "coins ≥ …: enter a number",
      "likes ≥ many: enter a number",
      " contains “x”: choose a field",
    ]);
  });
});

describe("words", () => {
  const cases = [
    [text("contains", "payload.message", "discord"), "message contains “discord”"],
    [text("contains", "payload.message", "http", true), "message does not contain “http”"],
    [text("startsWith", "payload.message", "!discord"), "message starts with “!discord”"],
    [text("startsWith", "user.uniqueId", "bot_", true), "username does not start with “bot_”"],
    [text("inList", "payload.giftName", "Rose, Lion"), "gift name is one of “Rose”, “Lion”"],
    [text("inList", "user.uniqueId", "nightbot", true), "username is not one of “nightbot”"],
    [{ kind: "cond", check: "user", flag: "moderator", negate: false }, "user is a moderator"],
    [{ kind: "cond", check: "user", flag: "follower", negate: true }, "user is not a follower"],
    [{ kind: "cond", check: "coins", value: "1000" }, "coins ≥ 1000"],
    [{ kind: "cond", check: "giftCount", value: "10" }, "gift count ≥ 10"],
    [{ kind: "cond", check: "likeCount", value: "50" }, "likes ≥ 50"],
    [{ kind: "cond", check: "compare", field: "payload.viewerCount", operator: ">", value: "100" }, "payload.viewerCount > 100"],
  ];
  for (const [clause, words] of cases) test(words, () => assert.equal(describeClause(clause), words));

  test("a tree in words, nested", () => {
    const g = parseCondition(CASES.find((c) => c.name.startsWith("nested")).logic);
    assert.deepEqual(describeGroup(g), {
      text: "all of",
      items: [
        { text: "message starts with “!so ”", items: [] },
        {
          text: "any of",
          items: [
            { text: "user is a moderator", items: [] },
            { text: "user is a subscriber", items: [] },
          ],
        },
      ],
    });
    assert.deepEqual(describeGroup(group("and")), { text: "every event of the type", items: [] });
  });
});

describe("what a condition reads (the test panel)", () => {
  const event = {
    eventType: "CHAT",
    user: { uniqueId: "zoe.petals", isModerator: false, followRole: 1 },
    payload: { message: "hello from chat 👋", emotes: [{ emoteId: "e1" }] },
  };

  test("the paths of every var, once each, in order", () => {
    const logic = { and: [{ "==": [{ substr: [message, 0, 3] }, "!so"] }, { or: [{ "==": [{ var: "user.isModerator" }, true] }, { in: ["x", message] }] }] };
    assert.deepEqual(readPaths(logic), ["payload.message", "user.isModerator"]);
    assert.deepEqual(readPaths({ var: ["payload.coins", 0] }), ["payload.coins"]);
    assert.deepEqual(readPaths(true), []);
  });

  test("values: as JSON, (missing) when absent; array items by index", () => {
    assert.equal(valueAt(event, "payload.emotes.0.emoteId"), "e1");
    assert.equal(valueAt(event, "payload.coins"), undefined);
    assert.equal(valueAt(event, "user.uniqueId.length"), undefined);
    const logic = { and: [{ in: ["!discord", message] }, { "==": [{ var: "user.isModerator" }, true] }, { ">=": [{ var: "user.followRole" }, 1] }, { ">=": [{ var: "payload.coins" }, 5] }] };
    assert.deepEqual(valuesRead(logic, event), [
      { path: "payload.message", value: '"hello from chat 👋"' },
      { path: "user.isModerator", value: "false" },
      { path: "user.followRole", value: "1" },
      { path: "payload.coins", value: "(missing)" },
    ]);
  });
});
