// The rule editor's condition builder: conditions people ask for ("the message starts with
// !discord", "the user is a moderator", "coins at least 1000") ↔ the JSON Logic the rules role
// evaluates (src/ttlp/rules/jsonlogic.py). No DOM here (tests/js/rulebuilder.test.mjs; the
// cases of tests/fixtures/rulebuilder-cases.json are also evaluated by the Python evaluator in
// tests/unit/test_rulebuilder_cases.py, so what the builder writes means what it says).
//
// The tree is logic.js's: a group {kind: "group", op: "and" | "or", items}, its items groups or
// conditions. A condition here is {kind: "cond", check, ...}:
//
//   contains    {field, value, negate}   {"in": [value, {"var": field}]}   (case-sensitive)
//   startsWith  {field, value, negate}   {"==": [{"substr": [{"var": [field, ""]}, 0, n]}, value]}
//   inList      {field, value, negate}   {"in": [{"var": field}, ["a", "b"]]}  (value: "a, b")
//   user        {flag, negate}           moderator / subscriber / follower (below)
//   coins | giftCount | likeCount {value}   {">=": [{"var": "payload.coins"}, 1000]}
//   compare     {field, operator, value} logic.js's field / operator / value condition
//
// ``negate`` wraps the condition in {"!": ...}. Starts-with needs no operator of its own:
// ``substr`` (standard JSON Logic) takes the first n characters, n counted in code points as the
// Python evaluator counts them (an emoji is one); the field reads as "" when the event lacks it
// (``substr`` would read a missing value as the text "null", which starts with "nu"). A condition reads back into the builder only
// when the builder writes it again exactly (``parseCondition``): opening and saving a rule never
// rewrites a condition the builder did not write; anything else is edited as JSON.

import { fromLogic, newGroup, OPERATORS, toLogic } from "./logic.js";

export const CHECKS = [
  { value: "contains", label: "text contains" },
  { value: "startsWith", label: "text starts with" },
  { value: "inList", label: "text is one of" },
  { value: "user", label: "user is" },
  { value: "coins", label: "coins at least" },
  { value: "giftCount", label: "gift count (repeats) at least" },
  { value: "likeCount", label: "likes at least" },
  { value: "compare", label: "field comparison" },
];
export const TEXT_CHECKS = ["contains", "startsWith", "inList"];
const NEGATABLE = [...TEXT_CHECKS, "user"];

/** The thresholds: each a fixed field of the UnifiedEvent, compared with ``>=``. */
export const THRESHOLDS = {
  coins: { field: "payload.coins", label: "coins" },
  giftCount: { field: "payload.giftCount", label: "gift count" },
  likeCount: { field: "payload.likeCount", label: "likes" },
};

/** The user flags (UnifiedEvent ``user``, DESIGN §4): followRole 1 follows, 2 friends. */
export const USER_FLAGS = {
  moderator: { label: "a moderator", field: "user.isModerator", logic: () => ({ "==": [{ var: "user.isModerator" }, true] }) },
  subscriber: { label: "a subscriber", field: "user.isSubscriber", logic: () => ({ "==": [{ var: "user.isSubscriber" }, true] }) },
  follower: { label: "a follower", field: "user.followRole", logic: () => ({ ">=": [{ var: "user.followRole" }, 1] }) },
};

/** How a field reads in the builder's descriptions (others: their path). */
export const FIELD_LABELS = {
  "payload.message": "message",
  "payload.giftName": "gift name",
  "payload.language": "language",
  "payload.emoteId": "emote id",
  "payload.rawType": "raw type",
  "user.uniqueId": "username",
  "user.displayName": "display name",
};

export function fieldLabel(path) {
  return FIELD_LABELS[path] ?? path;
}

// -- what an event type offers ------------------------------------------------------------------

/** The fields text checks may read: the string fields of the payload and the user (``types``:
 * path → JSON type, from GET /rules/placeholders). */
export function textFields(types = {}) {
  return Object.keys(types).filter((p) => types[p] === "string" && (p.startsWith("payload.") || p.startsWith("user.")));
}

/** The checks the builder offers for an event type's fields (``paths``); ``current`` (a
 * condition's own check) is always among them. */
export function checksFor(paths, types = {}, current = null) {
  const has = (p) => paths.includes(p);
  return CHECKS.filter(({ value }) => {
    if (value === current || value === "compare") return true;
    if (TEXT_CHECKS.includes(value)) return textFields(types).length > 0;
    if (value === "user") return has("user.isModerator") || has("user.followRole");
    return has(THRESHOLDS[value].field);
  });
}

function defaultTextField(types) {
  const fields = textFields(types);
  return ["payload.message", "payload.giftName", "user.uniqueId"].find((f) => fields.includes(f)) ?? fields[0] ?? "";
}

/** A new condition of ``check`` with its defaults for the event type. */
export function newClause(check, paths = [], types = {}) {
  if (TEXT_CHECKS.includes(check)) return { kind: "cond", check, field: defaultTextField(types), value: "", negate: false };
  if (check === "user") return { kind: "cond", check, flag: "moderator", negate: false };
  if (check in THRESHOLDS) return { kind: "cond", check, value: "" };
  return { kind: "cond", check: "compare", field: paths[0] ?? "", operator: "==", value: "" };
}

/** What "+ condition" adds: what rules of the type usually test. */
export function defaultCheck(paths, types = {}) {
  if (paths.includes("payload.coins")) return "coins";
  if (paths.includes("payload.likeCount")) return "likeCount";
  if (types["payload.message"] === "string") return "contains";
  if (paths.includes("user.isModerator")) return "user";
  return "compare";
}

/** The condition ``clause`` as a ``check`` (the kind picker changed): the field and value stay
 * when they still make sense. */
export function changeCheck(clause, check, paths = [], types = {}) {
  const next = newClause(check, paths, types);
  if (TEXT_CHECKS.includes(check) && TEXT_CHECKS.includes(clause.check)) Object.assign(next, { field: clause.field, value: clause.value, negate: clause.negate });
  if (check in THRESHOLDS && clause.check in THRESHOLDS) next.value = clause.value;
  if (check === "compare" && clause.field) next.field = clause.field;
  return next;
}

/** Conditions added before the event type's fields were known (no field yet) take their
 * defaults; returns how many did. */
export function fillFields(group, paths = [], types = {}) {
  let filled = 0;
  for (const item of group.items) {
    if (item.kind === "group") filled += fillFields(item, paths, types);
    else if ("field" in item && !item.field) {
      item.field = item.check === "compare" ? (paths[0] ?? "") : defaultTextField(types);
      if (item.field) filled += 1;
    }
  }
  return filled;
}

// -- builder → JSON Logic -----------------------------------------------------------------------

/** Comma- or line-separated values: trimmed, empty ones dropped. */
export function splitList(text) {
  return String(text)
    .split(/[,\n]/)
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

/** Characters as the Python evaluator counts them (code points, not UTF-16 units). */
export function codePoints(text) {
  return [...text].length;
}

// A threshold's number; what is not one stays text (``problems`` names it, nothing is saved).
function number(text) {
  const t = String(text).trim();
  return t !== "" && Number.isFinite(Number(t)) ? Number(t) : t;
}

function positive(clause) {
  const field = { var: clause.field };
  switch (clause.check) {
    case "contains":
      return { in: [clause.value, field] };
    case "startsWith":
      return { "==": [{ substr: [{ var: [clause.field, ""] }, 0, codePoints(clause.value)] }, clause.value] };
    case "inList":
      return { in: [field, splitList(clause.value)] };
    case "user":
      return USER_FLAGS[clause.flag].logic();
    case "compare":
      return toLogic({ ...newGroup(), items: [{ kind: "cond", field: clause.field, operator: clause.operator, value: clause.value }] });
    default:
      return { ">=": [{ var: THRESHOLDS[clause.check].field }, number(clause.value)] };
  }
}

/** One condition as JSON Logic. */
export function clauseLogic(clause) {
  const logic = positive(clause);
  return clause.negate ? { "!": logic } : logic;
}

/** The tree as JSON Logic: an empty group is ``true`` (every event), a group of one its item. */
export function buildCondition(group) {
  const parts = group.items.map((x) => (x.kind === "group" ? buildCondition(x) : clauseLogic(x)));
  if (!parts.length) return true;
  if (parts.length === 1) return parts[0];
  return { [group.op]: parts };
}

/** The JSON box's text for the tree. */
export function conditionText(group) {
  return JSON.stringify(buildCondition(group));
}

// -- JSON Logic → builder -----------------------------------------------------------------------

const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
const single = (x) => (isObject(x) && Object.keys(x).length === 1 ? Object.keys(x)[0] : null);
const varPath = (x) => (single(x) === "var" && typeof x.var === "string" && x.var !== "" ? x.var : null);
// {"var": [path, ""]}: the path, read as "" when absent.
const varOrEmpty = (x) => (single(x) === "var" && Array.isArray(x.var) && x.var.length === 2 && x.var[1] === "" ? varPath({ var: x.var[0] }) : null);
const text = (x) => typeof x === "string" && x !== "";
const listEntry = (x) => text(x) && x === x.trim() && !/[,\n]/.test(x);

function parsePositive(logic) {
  const op = single(logic);
  const args = op ? logic[op] : null;
  if (!Array.isArray(args)) return null;
  for (const [flag, spec] of Object.entries(USER_FLAGS)) {
    if (JSON.stringify(spec.logic()) === JSON.stringify(logic)) return { kind: "cond", check: "user", flag, negate: false };
  }
  if (op === "in" && args.length === 2) {
    const [a, b] = args;
    if (text(a) && varPath(b)) return { kind: "cond", check: "contains", field: varPath(b), value: a, negate: false };
    if (varPath(a) && Array.isArray(b) && b.length && b.every(listEntry)) {
      return { kind: "cond", check: "inList", field: varPath(a), value: b.join(", "), negate: false };
    }
  }
  if (op === "==" && args.length === 2 && single(args[0]) === "substr" && text(args[1])) {
    const sub = args[0].substr;
    if (Array.isArray(sub) && sub.length === 3 && varOrEmpty(sub[0])) {
      return { kind: "cond", check: "startsWith", field: varOrEmpty(sub[0]), value: args[1], negate: false };
    }
  }
  if (op === ">=" && args.length === 2 && typeof args[1] === "number" && Number.isFinite(args[1])) {
    const check = Object.keys(THRESHOLDS).find((k) => THRESHOLDS[k].field === varPath(args[0]));
    if (check) return { kind: "cond", check, value: String(args[1]) };
  }
  if (op === "and" || op === "or") return null;
  const compare = fromLogic(logic);
  const cond = compare?.items.length === 1 ? compare.items[0] : null;
  if (cond?.kind === "cond" && OPERATORS.includes(cond.operator)) {
    return { kind: "cond", check: "compare", field: cond.field, operator: cond.operator, value: cond.value };
  }
  return null;
}

function parseItem(logic) {
  if (logic === true) return newGroup();
  const op = single(logic);
  if (op === "and" || op === "or") {
    if (!Array.isArray(logic[op])) return null;
    const items = logic[op].map(parseItem);
    return items.every(Boolean) ? { kind: "group", op, items } : null;
  }
  if (op === "!") {
    const inner = parsePositive(logic["!"]);
    return inner && NEGATABLE.includes(inner.check) ? { ...inner, negate: true } : null;
  }
  return parsePositive(logic);
}

/** A condition → the builder's tree, or null when the builder cannot show it exactly (the
 * editor then shows the JSON, "edited as JSON"). */
export function parseCondition(logic) {
  const item = parseItem(logic);
  if (!item) return null;
  const group = item.kind === "group" ? item : { ...newGroup(), items: [item] };
  return JSON.stringify(buildCondition(group)) === JSON.stringify(logic) ? group : null;
}

/** The JSON box's text read: ``{error}`` while it is not JSON, else ``{group}`` (null: the
 * builder cannot show it). */
export function readRaw(raw) {
  let parsed;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { error: "Not valid JSON yet." };
  }
  return { group: parseCondition(parsed) };
}

// -- checks before saving -----------------------------------------------------------------------

function clauseProblem(c) {
  if (TEXT_CHECKS.includes(c.check)) {
    if (!c.field) return "choose a field";
    if (c.check === "inList") return splitList(c.value).length ? null : "enter at least one value (comma or line separated)";
    return c.value === "" ? "enter the text" : null;
  }
  if (c.check in THRESHOLDS) return typeof number(c.value) === "number" ? null : "enter a number";
  if (c.check === "compare") return c.field ? null : "choose a field";
  return USER_FLAGS[c.flag] ? null : "choose moderator, subscriber or follower";
}

/** What keeps the tree from being a rule: one line per incomplete condition. */
export function problems(group) {
  const out = [];
  for (const item of group.items) {
    if (item.kind === "group") out.push(...problems(item));
    else {
      const problem = clauseProblem(item);
      if (problem) out.push(`${describeClause(item)}: ${problem}`);
    }
  }
  return out;
}

// -- words --------------------------------------------------------------------------------------

const quoted = (v) => `“${v}”`;

/** One condition in words ("message starts with “!discord”"). */
export function describeClause(c) {
  const not = c.negate;
  switch (c.check) {
    case "contains":
      return `${fieldLabel(c.field)} ${not ? "does not contain" : "contains"} ${quoted(c.value)}`;
    case "startsWith":
      return `${fieldLabel(c.field)} ${not ? "does not start with" : "starts with"} ${quoted(c.value)}`;
    case "inList":
      return `${fieldLabel(c.field)} ${not ? "is not one of" : "is one of"} ${splitList(c.value).map(quoted).join(", ") || "…"}`;
    case "user":
      return `user ${not ? "is not" : "is"} ${USER_FLAGS[c.flag]?.label ?? c.flag}`;
    case "compare":
      return `${fieldLabel(c.field)} ${c.operator} ${c.value}`;
    default:
      return `${THRESHOLDS[c.check]?.label ?? c.check} ≥ ${String(c.value).trim() || "…"}`;
  }
}

/** The tree in words, for reading: {text, items} (items: nested lines; none for a condition). */
export function describeGroup(group) {
  if (!group.items.length) return { text: "every event of the type", items: [] };
  return {
    text: group.op === "or" ? "any of" : "all of",
    items: group.items.map((x) => (x.kind === "group" ? describeGroup(x) : { text: describeClause(x), items: [] })),
  };
}

// -- what a condition reads (the test panel) ----------------------------------------------------

/** The event paths a condition reads (``var`` with a fixed path), in order, once each. */
export function readPaths(logic) {
  const paths = [];
  const visit = (x) => {
    if (Array.isArray(x)) x.forEach(visit);
    else if (isObject(x)) {
      for (const [op, args] of Object.entries(x)) {
        const path = op === "var" ? (Array.isArray(args) ? args[0] : args) : null;
        if (typeof path === "string" || typeof path === "number") {
          if (String(path) !== "" && !paths.includes(String(path))) paths.push(String(path));
        } else visit(args);
      }
    }
  };
  visit(logic);
  return paths;
}

/** ``event``'s value at a dotted ``path`` (array items by index); undefined when absent. */
export function valueAt(event, path) {
  let value = event;
  for (const key of path.split(".")) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, key)) return undefined;
    value = value[key];
  }
  return value;
}

/** What the condition reads from ``event``: [{path, value}] (value as text, "(missing)"). */
export function valuesRead(logic, event) {
  return readPaths(logic).map((path) => {
    const value = valueAt(event, path);
    return { path, value: value === undefined ? "(missing)" : JSON.stringify(value) };
  });
}
