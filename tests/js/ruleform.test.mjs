// The rule editor's form as plain data (src/ttlp/api/ui/ruleform.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  actionFields,
  actionOf,
  actionSummary,
  builderAvailable,
  durationLabel,
  EDITED_AS_JSON,
  formFromRule,
  insertToken,
  keptChoice,
  MAX_TEST_RESULTS,
  rawState,
  ruleOf,
  scopeChoices,
  storedTestRequest,
  testRequest,
  withResult,
} from "../../src/ttlp/api/ui/ruleform.js";

const RULE = {
  id: 7,
  name: "big gifts",
  scope: "luna.beats",
  eventType: "GIFT",
  condition: { ">=": [{ var: "payload.coins" }, 1000] },
  action: { type: "announce", template: "{username} sent {giftName}" },
  enabled: false,
  priority: 5,
  cooldownS: 30,
  userCooldownS: 120,
  skipReplay: false,
  streakEndOnly: true,
  createdBy: "streamer",
};

describe("formFromRule", () => {
  test("a new rule: defaults, an empty builder group, condition true", () => {
    assert.deepEqual(formFromRule(null, { scope: "luna.beats", eventType: "GIFT" }), {
      editing: null,
      name: "",
      scope: "luna.beats",
      eventType: "GIFT",
      priority: "0",
      enabled: true,
      raw: "true",
      rawNote: "",
      group: { kind: "group", op: "and", items: [] },
      mode: "builder",
      actionType: "log",
      template: "",
      op: "mute",
      durationS: "60",
      url: "",
      cooldownS: "0",
      userCooldownS: "0",
      skipReplay: true,
      streakEndOnly: true,
    });
  });

  test("a new rule of another type than GIFT does not default to streak end only", () => {
    const form = formFromRule(null, { scope: "*", eventType: "CHAT" });
    assert.equal(form.streakEndOnly, false);
    assert.equal(form.eventType, "CHAT");
  });

  test("an existing rule: its fields as the inputs hold them", () => {
    const form = formFromRule(RULE, { scope: "*", eventType: "LIKE" });
    assert.equal(form.editing, 7);
    assert.equal(form.scope, "luna.beats");
    assert.equal(form.eventType, "GIFT");
    assert.equal(form.priority, "5");
    assert.equal(form.cooldownS, "30");
    assert.equal(form.userCooldownS, "120");
    assert.equal(form.enabled, false);
    assert.equal(form.skipReplay, false);
    assert.equal(form.raw, '{">=":[{"var":"payload.coins"},1000]}');
    assert.deepEqual(form.group.items, [{ kind: "cond", check: "coins", value: "1000" }]);
    assert.equal(form.mode, "builder");
    assert.equal(form.actionType, "announce");
    assert.equal(form.template, "{username} sent {giftName}");
  });

  test("a condition the builder cannot show: no group, the raw JSON as it is, edited as JSON", () => {
    const form = formFromRule({ ...RULE, condition: { missing: ["payload.coins"] } });
    assert.equal(form.group, null);
    assert.equal(form.raw, '{"missing":["payload.coins"]}');
    assert.equal(form.mode, "json");
    assert.equal(form.rawNote, EDITED_AS_JSON);
    assert.match(form.rawNote, /edited as JSON/i);
  });

  test("a chat command rule opens in the builder", () => {
    const condition = { "==": [{ substr: [{ var: ["payload.message", ""] }, 0, 8] }, "!discord"] };
    const form = formFromRule({ ...RULE, eventType: "CHAT", condition });
    assert.equal(form.mode, "builder");
    assert.deepEqual(form.group.items, [{ kind: "cond", check: "startsWith", field: "payload.message", value: "!discord", negate: false }]);
  });

  test("a moderate action fills op and duration; a webhook its url", () => {
    const mute = formFromRule({ ...RULE, action: { type: "moderate", op: "mute", durationS: 300 } });
    assert.deepEqual([mute.actionType, mute.op, mute.durationS], ["moderate", "mute", "300"]);
    const hook = formFromRule({ ...RULE, action: { type: "webhook", url: "https://example.com/h" } });
    assert.deepEqual([hook.actionType, hook.url, hook.template], ["webhook", "https://example.com/h", ""]);
  });
});

describe("actionOf: only the fields the action type uses", () => {
  const form = { template: "", op: "mute", durationS: "60", url: "https://example.com/h" };
  const cases = [
    ["log without a template", { ...form, actionType: "log" }, { type: "log" }],
    ["log with a template", { ...form, actionType: "log", template: "{username}" }, { type: "log", template: "{username}" }],
    ["announce", { ...form, actionType: "announce", template: "hi {username}" }, { type: "announce", template: "hi {username}" }],
    ["announce, empty template (the server says why not)", { ...form, actionType: "announce" }, { type: "announce", template: "" }],
    ["mute", { ...form, actionType: "moderate", template: "ignored" }, { type: "moderate", op: "mute", durationS: 60 }],
    ["mute until unmuted", { ...form, actionType: "moderate", durationS: "-1" }, { type: "moderate", op: "mute", durationS: -1 }],
    ["kick", { ...form, actionType: "moderate", op: "kick" }, { type: "moderate", op: "kick" }],
    ["webhook", { ...form, actionType: "webhook" }, { type: "webhook", url: "https://example.com/h" }],
    ["webhook with a template", { ...form, actionType: "webhook", template: "{giftName}" }, { type: "webhook", url: "https://example.com/h", template: "{giftName}" }],
  ];
  for (const [name, input, action] of cases) test(name, () => assert.deepEqual(actionOf(input), action));
});

describe("ruleOf", () => {
  test("a rule read into the form comes back as the same definition", () => {
    const { id, createdBy, ...definition } = RULE;
    assert.deepEqual(ruleOf(formFromRule(RULE)), definition);
  });

  test("numbers from the inputs' text; empty inputs are 0", () => {
    const form = { ...formFromRule(null, { scope: "*" }), name: "n", priority: "", cooldownS: "15", userCooldownS: "" };
    const rule = ruleOf(form);
    assert.equal(rule.priority, 0);
    assert.equal(rule.cooldownS, 15);
    assert.equal(rule.userCooldownS, 0);
    assert.equal(rule.condition, true);
  });

  test("the condition is the raw JSON, even one the builder cannot show", () => {
    const form = { ...formFromRule(null, { scope: "*" }), raw: '{"missing":["a"]}', group: null };
    assert.deepEqual(ruleOf(form).condition, { missing: ["a"] });
  });

  test("a condition that is not JSON is refused with the field's name", () => {
    const form = { ...formFromRule(null, { scope: "*" }), raw: '{"==": [' };
    assert.throws(() => ruleOf(form), { message: "condition: not valid JSON" });
  });
});

describe("the JSON box and the builder", () => {
  const form = (raw) => ({ ...formFromRule(null, { scope: "*" }), raw });

  test("builderAvailable: only for JSON the builder can show", () => {
    assert.equal(builderAvailable(form('{">=":[{"var":"payload.coins"},5]}')), true);
    assert.equal(builderAvailable(form("true")), true);
    assert.equal(builderAvailable(form('{"missing":["a"]}')), false);
    assert.equal(builderAvailable(form('{"==": [')), false);
  });

  test("rawState: JSON the builder can show becomes its tree, no note", () => {
    const old = { kind: "group", op: "and", items: [] };
    const state = rawState('{"==":[{"var":"user.isModerator"},true]}', old);
    assert.equal(state.rawNote, "");
    assert.deepEqual(state.group.items, [{ kind: "cond", check: "user", flag: "moderator", negate: false }]);
  });

  test("rawState: other JSON is edited as JSON (no tree); text that is not JSON keeps the old tree", () => {
    const old = { kind: "group", op: "and", items: [] };
    assert.deepEqual(rawState('{"missing":["a"]}', old), { rawNote: EDITED_AS_JSON, group: null });
    assert.deepEqual(rawState("{", old), { rawNote: "Not valid JSON yet.", group: old });
  });
});

describe("actionSummary", () => {
  const cases = [
    [{ type: "log" }, "log"],
    [{ type: "announce", template: "hi" }, "announce"],
    [{ type: "moderate", op: "mute", durationS: 300 }, "moderate: mute 300s"],
    [{ type: "moderate", op: "mute", durationS: -1 }, "moderate: mute until unmuted"],
    [{ type: "moderate", op: "kick" }, "moderate: kick"],
    [{ type: "webhook", url: "https://example.com/h" }, "webhook → https://example.com/h"],
  ];
  for (const [action, text] of cases) test(text, () => assert.equal(actionSummary(action), text));
});

describe("actionFields", () => {
  const cases = [
    ["log", "mute", { template: true, op: false, duration: false, url: false }],
    ["announce", "mute", { template: true, op: false, duration: false, url: false }],
    ["moderate", "mute", { template: false, op: true, duration: true, url: false }],
    ["moderate", "kick", { template: false, op: true, duration: false, url: false }],
    ["webhook", "mute", { template: true, op: false, duration: false, url: true }],
  ];
  for (const [actionType, op, shown] of cases) {
    test(`${actionType} / ${op}`, () => assert.deepEqual(actionFields({ actionType, op }), shown));
  }
});

describe("small helpers", () => {
  test("durationLabel", () => {
    assert.equal(durationLabel(60), "60s");
    assert.equal(durationLabel(-1), "until unmuted");
  });

  test("scopeChoices: global accounts get * and the current stream, others their handles", () => {
    assert.deepEqual(scopeChoices(["*"], "luna.beats"), ["*", "luna.beats"]);
    assert.deepEqual(scopeChoices(["*"], null), ["*"]);
    assert.deepEqual(scopeChoices(["luna.beats", "dj.nova"], "luna.beats"), ["luna.beats", "dj.nova"]);
  });

  test("insertToken replaces the selection, or goes at the caret, or at the end", () => {
    assert.equal(insertToken("hello world", "username", 6, 11), "hello {username}");
    assert.equal(insertToken("hello ", "username", 0, 0), "{username}hello ");
    assert.equal(insertToken("sent ", "giftName"), "sent {giftName}");
    assert.equal(insertToken("sent ", "giftName", undefined, undefined), "sent {giftName}");
  });

  test("testRequest: a stored event by id, else the sample of a type", () => {
    const rule = { name: "r" };
    assert.deepEqual(testRequest(rule, "sample:GIFT"), { rule, eventType: "GIFT" });
    assert.deepEqual(testRequest(rule, "event:ab:cd"), { rule, eventId: "ab:cd" });
  });

  test("storedTestRequest: a stored rule by id (a read-only view tries the rule as stored)", () => {
    assert.deepEqual(storedTestRequest(7, "sample:CHAT"), { ruleId: 7, eventType: "CHAT" });
    assert.deepEqual(storedTestRequest(7, "event:ab"), { ruleId: 7, eventId: "ab" });
  });

  test("withResult puts the newest first and keeps at most five", () => {
    let results = [];
    for (let i = 1; i <= 7; i += 1) results = withResult(results, i);
    assert.equal(MAX_TEST_RESULTS, 5);
    assert.deepEqual(results, [7, 6, 5, 4, 3]);
  });

  test("keptChoice keeps an offered choice, else the first, else nothing", () => {
    const options = [{ value: "sample:GIFT" }, { value: "event:1" }];
    assert.equal(keptChoice(options, "event:1"), "event:1");
    assert.equal(keptChoice(options, "event:2"), "sample:GIFT");
    assert.equal(keptChoice([], "event:1"), "");
  });
});
