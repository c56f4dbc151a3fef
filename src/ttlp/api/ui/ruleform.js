// The rule editor's form as plain data: a rule → the form, the form → the rule the API takes,
// which action fields apply, the dry run's request. No DOM here (tests/js/ruleform.test.mjs).

import { parseCondition, readRaw } from "./rulebuilder.js";

export const ACTION_TYPES = ["log", "announce", "moderate", "webhook"];
export const MODERATIONS = ["mute", "kick"];
export const MUTE_DURATIONS = [5, 30, 60, 300, -1];
export const MAX_TEST_RESULTS = 5;
export const EDITED_AS_JSON = "Edited as JSON: the builder cannot show this condition.";

export function durationLabel(seconds) {
  return seconds === -1 ? "until unmuted" : `${seconds}s`;
}

/** The scopes an account may give a rule: its handles, or (``*``) global and the current stream. */
export function scopeChoices(accountScopes, stream) {
  return accountScopes.includes("*") ? ["*", ...(stream ? [stream] : [])] : [...accountScopes];
}

/** The form of ``rule`` (null: a new one). Numbers stay text (what the inputs hold); ``scope``
 * and ``eventType`` of a new rule keep what ``defaults`` has. ``group`` is the builder's tree
 * (rulebuilder.js), null when the builder cannot show the condition: the form then edits the
 * JSON (``mode`` "json", with a note saying so), and ``raw`` is what counts. */
export function formFromRule(rule, defaults = {}) {
  const condition = rule ? rule.condition : true;
  const group = parseCondition(condition);
  const action = rule?.action ?? { type: "log" };
  const eventType = rule?.eventType ?? defaults.eventType ?? "GIFT";
  return {
    editing: rule?.id ?? null,
    name: rule?.name ?? "",
    scope: rule?.scope ?? defaults.scope ?? "",
    eventType,
    priority: String(rule?.priority ?? 0),
    enabled: rule?.enabled ?? true,
    raw: JSON.stringify(condition),
    rawNote: group ? "" : EDITED_AS_JSON,
    group,
    mode: group ? "builder" : "json",
    actionType: action.type,
    template: action.template ?? "",
    op: action.op ?? "mute",
    durationS: String(action.durationS ?? 60),
    url: action.url ?? "",
    cooldownS: String(rule?.cooldownS ?? 0),
    userCooldownS: String(rule?.userCooldownS ?? 0),
    skipReplay: rule?.skipReplay ?? true,
    streakEndOnly: rule?.streakEndOnly ?? eventType === "GIFT",
  };
}

/** The action of the form: only the fields its type uses. */
export function actionOf(form) {
  const type = form.actionType;
  if (type === "moderate") return { type, op: form.op, ...(form.op === "mute" ? { durationS: Number(form.durationS) } : {}) };
  if (type === "webhook") return { type, url: form.url, ...(form.template ? { template: form.template } : {}) };
  if (type === "log" && !form.template) return { type };
  return { type, template: form.template };
}

/** The rule the API takes (POST/PUT /rules, POST /rules/test); throws when the condition is
 * not JSON. */
export function ruleOf(form) {
  let condition;
  try {
    condition = JSON.parse(form.raw);
  } catch {
    throw new Error("condition: not valid JSON");
  }
  return {
    name: form.name,
    scope: form.scope,
    eventType: form.eventType,
    condition,
    action: actionOf(form),
    enabled: form.enabled,
    priority: Number(form.priority || 0),
    cooldownS: Number(form.cooldownS || 0),
    userCooldownS: Number(form.userCooldownS || 0),
    skipReplay: form.skipReplay,
    streakEndOnly: form.streakEndOnly,
  };
}

/** Whether the form may switch to the builder: its JSON is valid and the builder can show it. */
export function builderAvailable(form) {
  const { error, group } = readRaw(form.raw);
  return !error && group !== null;
}

/** What the JSON box says under it after ``raw`` was typed, and the builder's tree then (the
 * old one while the text is not JSON yet). */
export function rawState(raw, group) {
  const read = readRaw(raw);
  if (read.error) return { rawNote: read.error, group };
  return { rawNote: read.group ? "" : EDITED_AS_JSON, group: read.group };
}

/** A rule's action in a few words: "moderate: mute 60s", "webhook → https://…". */
export function actionSummary(action) {
  if (action.type === "moderate") return `moderate: ${action.op}${action.op === "mute" ? ` ${durationLabel(action.durationS)}` : ""}`;
  if (action.type === "webhook") return `webhook → ${action.url}`;
  return action.type;
}

/** Which action fields the form shows for its action type (and moderation). */
export function actionFields(form) {
  const moderate = form.actionType === "moderate";
  return {
    template: !moderate,
    op: moderate,
    duration: moderate && form.op === "mute",
    url: form.actionType === "webhook",
  };
}

/** ``{token}`` put in ``text`` in place of the selection [start, end) (the end when unknown). */
export function insertToken(text, token, start = text.length, end = start) {
  const at = start ?? text.length;
  return `${text.slice(0, at)}{${token}}${text.slice(end ?? at)}`;
}

/** The event part of POST /rules/test: a stored event (``event:<id>``) or the sample of a type
 * (``sample:<TYPE>``). */
export function testEvent(choice) {
  const at = choice.indexOf(":");
  const kind = choice.slice(0, at);
  const value = choice.slice(at + 1);
  return kind === "event" ? { eventId: value } : { eventType: value };
}

/** The body of POST /rules/test for the rule being edited. */
export function testRequest(rule, choice) {
  return { rule, ...testEvent(choice) };
}

/** The body of POST /rules/test for a stored rule, as it is (a read-only view). */
export function storedTestRequest(ruleId, choice) {
  return { ruleId, ...testEvent(choice) };
}

/** The dry-run results with ``result`` first, at most ``MAX_TEST_RESULTS``. */
export function withResult(results, result) {
  return [result, ...results].slice(0, MAX_TEST_RESULTS);
}

/** The test picker's choice after its options change: the same one when still offered. */
export function keptChoice(options, current) {
  return options.some((o) => o.value === current) ? current : (options[0]?.value ?? "");
}
