// The Backtest panel's plain logic (src/ttlp/api/ui/backtestlogic.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  backtestRequest,
  bucketText,
  chartOf,
  figureRows,
  keptSessions,
  localToIso,
  MAX_OUTPUTS,
  outputLine,
  outputText,
  progressOf,
  reasonText,
  sessionChoice,
  subjectOf,
  takeLines,
  userLine,
} from "../../src/ttlp/api/ui/backtestlogic.js";
import { formFromRule } from "../../src/ttlp/api/ui/ruleform.js";

const UTC = { locale: "en-GB", timeZone: "UTC" };
const RULE = {
  id: 7,
  name: "big gifts",
  scope: "luna.beats",
  eventType: "GIFT",
  condition: { ">=": [{ var: "payload.coins" }, 100] },
  action: { type: "announce", template: "Thank you {displayName}!" },
  enabled: true,
  priority: 0,
  cooldownS: 0,
  userCooldownS: 60,
  skipReplay: true,
  streakEndOnly: true,
};

describe("what is backtested", () => {
  test("a streamer's form: the rule as edited, with the stored rule it edits", () => {
    const subject = subjectOf(formFromRule(RULE), true);
    assert.equal(subject.ruleId, 7);
    assert.equal(subject.rule.name, "big gifts");
    assert.deepEqual(subject.rule.condition, RULE.condition);
    assert.equal(subject.rule.userCooldownS, 60);
  });

  test("a new rule without a name yet is backtested as an unsaved rule", () => {
    const form = formFromRule(null, { scope: "luna.beats", eventType: "CHAT" });
    const subject = subjectOf(form, true);
    assert.equal(subject.ruleId, undefined);
    assert.equal(subject.rule.name, "unsaved rule");
  });

  test("a moderator's read-only view: the stored rule by id; nothing before one is open", () => {
    assert.deepEqual(subjectOf(formFromRule(RULE), false), { ruleId: 7 });
    assert.equal(subjectOf(null, false), null);
  });

  test("a condition that is not JSON is refused before any request", () => {
    const form = { ...formFromRule(RULE), raw: "{nope" };
    assert.throws(() => subjectOf(form, true), /condition: not valid JSON/);
  });
});

describe("the request", () => {
  const subject = { ruleId: 7 };

  test("over the chosen sessions", () => {
    assert.deepEqual(backtestRequest(subject, { mode: "sessions", sessions: ["a", "b"] }), {
      ruleId: 7,
      outputs: MAX_OUTPUTS,
      sessions: ["a", "b"],
    });
    assert.throws(() => backtestRequest(subject, { mode: "sessions", sessions: [] }), /choose one or more sessions/);
    assert.throws(() => backtestRequest(null, { mode: "sessions", sessions: ["a"] }), /open or write a rule/);
  });

  test("over a time range of the stream, local times sent as instants", () => {
    const body = backtestRequest(subject, { mode: "range", stream: "luna.beats", since: "2025-03-01T19:00", until: "2025-03-01T22:00" });
    assert.equal(body.stream, "@luna.beats");
    assert.equal(body.since, new Date("2025-03-01T19:00").toISOString());
    assert.equal(body.until, new Date("2025-03-01T22:00").toISOString());
    assert.equal(body.sessions, undefined);
    const range = { mode: "range", stream: "luna.beats", since: "2025-03-01T22:00", until: "2025-03-01T19:00" };
    assert.throws(() => backtestRequest(subject, range), /start before it ends/);
    assert.throws(() => backtestRequest(subject, { ...range, since: "" }), /start and the end/);
    assert.throws(() => backtestRequest(subject, { ...range, stream: null }), /choose a streamer/);
    assert.equal(localToIso("not a time"), null);
  });
});

describe("the answer's lines", () => {
  test("lines split across chunks are parsed once complete", () => {
    let { messages, rest } = takeLines("", '{"type":"progress","done":0');
    assert.deepEqual(messages, []);
    ({ messages, rest } = takeLines(rest, ',"total":9,"fires":0}\n{"type":"res'));
    assert.deepEqual(messages, [{ type: "progress", done: 0, total: 9, fires: 0 }]);
    ({ messages, rest } = takeLines(rest, 'ult","fires":3}\n'));
    assert.deepEqual(messages, [{ type: "result", fires: 3 }]);
    assert.equal(rest, "");
  });

  test("progress: a fraction and a line; a running session may add events", () => {
    assert.deepEqual(progressOf(null), { value: null, text: "starting…" });
    const p = progressOf({ done: 50000, total: 200000, fires: 1 });
    assert.equal(p.value, 0.25);
    assert.equal(p.text, "50,000 of 200,000 events read · 1 fire so far");
    assert.equal(progressOf({ done: 12, total: 10, fires: 2 }).value, 1);
    assert.equal(progressOf({ done: 0, total: 0, fires: 0 }).value, 1);
  });
});

describe("the result", () => {
  const result = {
    eventsConsidered: 30000,
    matches: 900,
    fires: 400,
    skipped: { throttled: 450, user_cooldown: 50 },
    failed: { template: 0 },
    firesPerBucket: { start: "2025-03-01T19:00:00.000Z", bucketSeconds: 60, counts: [3, 0, 12] },
    eventsRead: 30000,
    elapsedMs: 812,
  };

  test("figures in words, skips and failures by reason", () => {
    const rows = Object.fromEntries(figureRows(result));
    assert.equal(rows["events considered"], "30,000");
    assert.equal(rows["fires"], "400");
    assert.equal(rows["skipped: announcement throttle"], "450");
    assert.equal(rows["skipped: per-user cooldown"], "50");
    assert.equal(rows["failed: template error"], "0");
    assert.equal(rows["peak per minute"], "12");
    assert.equal(rows["time"], "30,000 events in 0.81 s");
    assert.equal(reasonText("something_new"), "something_new");
  });

  test("the chart: one point per bucket from the start, titled by the bucket", () => {
    const chart = chartOf(result.firesPerBucket);
    assert.equal(chart.title, "Fires per minute");
    assert.deepEqual(
      chart.points.map((p) => [p.t.toISOString(), p.v]),
      [
        ["2025-03-01T19:00:00.000Z", 3],
        ["2025-03-01T19:01:00.000Z", 0],
        ["2025-03-01T19:02:00.000Z", 12],
      ],
    );
    assert.equal(chartOf(null), null);
    assert.equal(chartOf({ start: "x", bucketSeconds: 60, counts: [] }), null);
    assert.equal(bucketText(300), "5 minutes");
    assert.equal(bucketText(3600), "hour");
    assert.equal(bucketText(21600), "6 hours");
  });

  test("an output: when, who, and the text a webhook would carry", () => {
    const hook = {
      timestamp: "2025-03-01T19:02:03.000Z",
      userId: "1001",
      uniqueId: "zoe.petals",
      actionType: "webhook",
      rendered: JSON.stringify({ rule: { id: 1 }, event: {}, text: "hello there" }),
    };
    assert.deepEqual(outputLine(hook, UTC), { when: "01/03/2025, 19:02:03", who: "@zoe.petals", what: "hello there" });
    assert.equal(outputText({ ...hook, rendered: '{"rule":1,"event":{},"text":null}' }), '{"rule":1,"event":{},"text":null}');
    assert.equal(outputText({ actionType: "announce", rendered: "Thanks!" }), "Thanks!");
    assert.equal(outputText({ actionType: "log", rendered: null }), "");
    assert.equal(userLine({ userId: "1", uniqueId: null, fires: 1 }), "1 — 1 fire");
  });
});

describe("sessions", () => {
  const sessions = [
    { id: "live-now", type: "live", live: true, createdAt: "2025-03-02T19:00:00Z", durationSeconds: 60, eventCount: 10 },
    { id: "replay", type: "replay", live: false, createdAt: "2025-03-02T10:00:00Z", durationSeconds: null, eventCount: 5 },
    { id: "night", type: "live", live: false, createdAt: "2025-03-01T19:00:00Z", durationSeconds: 10800, eventCount: 200000 },
  ];

  test("a session as a choice, replays and the running one marked", () => {
    assert.deepEqual(sessionChoice(sessions[2], UTC), { value: "night", label: "01/03/2025, 19:00:00 · 3:00:00 · 200,000 events" });
    assert.match(sessionChoice(sessions[1], UTC).label, / · 5 events · replay$/);
    assert.match(sessionChoice(sessions[0], UTC).label, / · live now$/);
  });

  test("the choice survives a reload; first, the newest finished live session", () => {
    assert.deepEqual(keptSessions([], sessions), ["night"]);
    assert.deepEqual(keptSessions(["replay", "gone"], sessions), ["replay"]);
    assert.deepEqual(keptSessions(["gone"], sessions.slice(0, 2)), ["live-now"]);
    assert.deepEqual(keptSessions([], []), []);
  });
});
