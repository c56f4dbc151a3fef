// The condition builder's model ↔ JSON Logic (src/ttlp/api/ui/logic.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  addGroup,
  fieldOptions,
  fromLogic,
  newGroup,
  OPERATORS,
  removeItem,
  toLogic,
  typed,
} from "../../src/ttlp/api/ui/logic.js";

const cond = (field, operator, value) => ({ kind: "cond", field, operator, value });
const group = (op, ...items) => ({ kind: "group", op, items });
const coins = { var: "payload.coins" };

describe("typed: what was typed → a JSON value", () => {
  const cases = [
    ["1000", 1000],
    ["-3", -3],
    ["12.5", 12.5],
    ["1e3", 1000],
    [" 7 ", 7],
    ["true", true],
    ["false", false],
    ["null", null],
    ["", ""],
    ["   ", ""],
    ["Rose", "Rose"],
    [" two words ", "two words"],
    ["True", "True"],
  ];
  for (const [text, value] of cases) {
    test(`${JSON.stringify(text)} → ${JSON.stringify(value)}`, () => assert.equal(typed(text), value));
  }
});

describe("toLogic", () => {
  test("an empty group is true (every event matches)", () => {
    assert.equal(toLogic(newGroup()), true);
    assert.equal(toLogic(newGroup("or")), true);
  });

  test("a group of one condition is that condition", () => {
    assert.deepEqual(toLogic(group("and", cond("payload.coins", ">=", "1000"))), { ">=": [coins, 1000] });
  });

  for (const operator of OPERATORS.filter((o) => o !== "in")) {
    test(`operator ${operator} compares the field with the typed value`, () => {
      assert.deepEqual(toLogic(group("or", cond("payload.coins", operator, "5"))), { [operator]: [coins, 5] });
    });
  }

  test("the builder offers exactly these operators", () => {
    assert.deepEqual(OPERATORS, ["==", "!=", ">", ">=", "<", "<=", "in"]);
  });

  test("in: a comma-separated list of typed values, blanks dropped", () => {
    const logic = toLogic(group("and", cond("payload.giftName", "in", "Rose, 5,true, null,, Lion ")));
    assert.deepEqual(logic, { in: [{ var: "payload.giftName" }, ["Rose", 5, true, null, "Lion"]] });
  });

  test("in with nothing typed is the empty list", () => {
    assert.deepEqual(toLogic(group("and", cond("a", "in", ""))), { in: [{ var: "a" }, []] });
  });

  test("values of each type", () => {
    const logic = toLogic(
      group(
        "and",
        cond("s", "==", "Rose"),
        cond("n", "==", "2.5"),
        cond("t", "==", "true"),
        cond("f", "!=", "false"),
        cond("z", "==", "null"),
        cond("e", "==", ""),
      ),
    );
    assert.deepEqual(logic, {
      and: [
        { "==": [{ var: "s" }, "Rose"] },
        { "==": [{ var: "n" }, 2.5] },
        { "==": [{ var: "t" }, true] },
        { "!=": [{ var: "f" }, false] },
        { "==": [{ var: "z" }, null] },
        { "==": [{ var: "e" }, ""] },
      ],
    });
  });

  test("nested groups keep their combiner; a nested group of one collapses", () => {
    const tree = group(
      "and",
      cond("payload.coins", ">=", "1000"),
      group("or", cond("user.uniqueId", "==", "zoe.petals"), cond("user.uniqueId", "==", "night.owl")),
      group("or", cond("payload.giftName", "!=", "Rose")),
    );
    assert.deepEqual(toLogic(tree), {
      and: [
        { ">=": [coins, 1000] },
        { or: [{ "==": [{ var: "user.uniqueId" }, "zoe.petals"] }, { "==": [{ var: "user.uniqueId" }, "night.owl"] }] },
        { "!=": [{ var: "payload.giftName" }, "Rose"] },
      ],
    });
  });

  test("an empty nested group is true", () => {
    assert.deepEqual(toLogic(group("and", cond("a", "==", "1"), newGroup("or"))), { and: [{ "==": [{ var: "a" }, 1] }, true] });
  });
});

describe("fromLogic", () => {
  test("true is an empty group", () => {
    assert.deepEqual(fromLogic(true), newGroup());
  });

  test("a single condition becomes a group of one", () => {
    assert.deepEqual(fromLogic({ ">=": [coins, 1000] }), group("and", cond("payload.coins", ">=", "1000")));
  });

  test("values are shown as the text that types back to them", () => {
    assert.deepEqual(
      fromLogic({
        or: [
          { "==": [{ var: "s" }, "Rose"] },
          { "<": [{ var: "n" }, -2.5] },
          { "==": [{ var: "t" }, true] },
          { "==": [{ var: "z" }, null] },
          { in: [{ var: "l" }, ["a", 5, false, null]] },
        ],
      }),
      group("or", cond("s", "==", "Rose"), cond("n", "<", "-2.5"), cond("t", "==", "true"), cond("z", "==", "null"), cond("l", "in", "a, 5, false, null")),
    );
  });

  const unshowable = {
    "a bare var": { var: "payload.coins" },
    "false": false,
    "null": null,
    "a number": 5,
    "an array": [{ "==": [coins, 1] }],
    "an unknown operator": { "+": [1, 2] },
    "an operator the builder does not offer": { "!": [coins] },
    "two operators in one object": { "==": [coins, 1], "!=": [coins, 2] },
    "one argument": { "==": [coins] },
    "three arguments": { "<": [1, coins, 3] },
    "a constant on the left": { "==": [1, coins] },
    "a var with a default": { "==": [{ var: ["payload.coins", 0] }, 1] },
    "a var with another key": { "==": [{ var: "payload.coins", x: 1 }, 1] },
    "a var on the right": { ">=": [coins, { var: "payload.diamonds" }] },
    "a list on the right of ==": { "==": [coins, [1, 2]] },
    "in over a string": { in: [{ var: "payload.message" }, "hello"] },
    "in with an object in the list": { in: [coins, [1, { var: "x" }]] },
    "in with a comma inside a value": { in: [coins, ["a,b"]] },
    "in with an empty string": { in: [coins, ["", "a"]] },
    "a number written as a string": { "==": [{ var: "payload.giftId" }, "5"] },
    "true written as a string": { "==": [{ var: "x" }, "true"] },
    "a string with outer spaces": { "==": [{ var: "x" }, " a "] },
    "an and with one unshowable part": { and: [{ ">=": [coins, 1] }, { missing: ["x"] }] },
    "a deep unshowable part": { and: [{ or: [{ "==": [coins, 1] }, { if: [true, 1, 2] }] }, { "==": [coins, 2] }] },
    "and over a non-list": { and: { "==": [coins, 1] } },
  };
  for (const [name, logic] of Object.entries(unshowable)) {
    test(`${name} → null (raw JSON only)`, () => assert.equal(fromLogic(logic), null));
  }
});

describe("round trips", () => {
  const logics = [
    true,
    { "==": [{ var: "payload.giftName" }, "Rose"] },
    { "!=": [{ var: "user.uniqueId" }, "zoe.petals"] },
    { ">": [coins, 0] },
    { ">=": [coins, 1000] },
    { "<": [coins, 1.5] },
    { "<=": [coins, -1] },
    { in: [{ var: "payload.giftId" }, [5655, 6064]] },
    { in: [{ var: "payload.giftName" }, ["Rose", "Lion", true, null]] },
    { "==": [{ var: "payload.isGiftStreak" }, false] },
    { "==": [{ var: "payload.message" }, null] },
    { "==": [{ var: "payload.message" }, ""] },
    { and: [{ ">=": [coins, 1000] }, { "==": [{ var: "payload.giftName" }, "Lion"] }] },
    { or: [{ ">=": [coins, 1000] }, { and: [{ "==": [{ var: "a" }, 1] }, { "==": [{ var: "b" }, "x y"] }] }] },
    { and: [{ "==": [{ var: "a" }, 1] }, true] },
  ];
  for (const logic of logics) {
    test(`toLogic(fromLogic(x)) is x: ${JSON.stringify(logic)}`, () => {
      assert.deepEqual(toLogic(fromLogic(logic)), logic);
    });
  }

  test("fromLogic(toLogic(tree)) is the tree for a tree of shown values", () => {
    const tree = group(
      "or",
      cond("payload.coins", ">=", "1000"),
      group("and", cond("payload.giftName", "in", "Rose, Lion"), cond("payload.giftCount", ">", "4")),
    );
    assert.deepEqual(fromLogic(toLogic(tree)), tree);
  });

  test("logic the builder simplifies keeps its meaning: an and of one", () => {
    const logic = { and: [{ "==": [{ var: "a" }, 1] }] };
    assert.deepEqual(toLogic(fromLogic(logic)), { "==": [{ var: "a" }, 1] });
  });
});

describe("edits of the tree", () => {
  test("addGroup nests a group combining the other way", () => {
    const and = newGroup("and");
    addGroup(and);
    const or = newGroup("or");
    addGroup(or);
    assert.equal(and.items[0].op, "or");
    assert.equal(or.items[0].op, "and");
    assert.deepEqual(and.items[0].items, []);
  });

  test("removeItem removes that very item, not an equal one", () => {
    const a = cond("x", "==", "1");
    const b = cond("x", "==", "1");
    const g = group("and", a, b);
    removeItem(g, b);
    assert.equal(g.items.length, 1);
    assert.equal(g.items[0], a);
    removeItem(g, b); // gone already: nothing happens
    assert.deepEqual(g.items, [a]);
  });

  test("fieldOptions adds a hand-written field in front of the type's fields", () => {
    const paths = ["payload.coins", "payload.giftName"];
    assert.deepEqual(fieldOptions(paths, "payload.coins"), paths);
    assert.deepEqual(fieldOptions(paths, ""), paths);
    assert.deepEqual(fieldOptions(paths, "payload.custom"), ["payload.custom", ...paths]);
  });
});
