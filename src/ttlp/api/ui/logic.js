// The condition builder's model and its JSON Logic (DESIGN §8). No DOM here
// (tests/js/logic.test.mjs).
//
// A group is {kind: "group", op: "and" | "or", items: [...]}, an item a group or
// {kind: "cond", field, operator, value} (value: the text the user typed). The builder edits this
// plain tree; ``toLogic`` writes the rule's condition from it and ``fromLogic`` reads a condition
// back into it (null when the builder cannot show it: the raw JSON is used as it is).

export const OPERATORS = ["==", "!=", ">", ">=", "<", "<=", "in"];
export const COMBINERS = [
  { value: "and", label: "all of (and)" },
  { value: "or", label: "any of (or)" },
];

export function newGroup(op = "and") {
  return { kind: "group", op, items: [] };
}

/** A typed value from what was typed: numbers, true/false/null, else the (trimmed) text. */
export function typed(text) {
  const t = String(text).trim();
  if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
  if (t === "true") return true;
  if (t === "false") return false;
  if (t === "null") return null;
  return t;
}

function condLogic(c) {
  const field = { var: c.field };
  if (c.operator === "in") return { in: [field, String(c.value).split(",").map(typed).filter((x) => x !== "")] };
  return { [c.operator]: [field, typed(c.value)] };
}

/** The group as JSON Logic: an empty group is ``true``, a group of one its item. */
export function toLogic(group) {
  const parts = group.items.map((x) => (x.kind === "group" ? toLogic(x) : condLogic(x)));
  if (!parts.length) return true;
  if (parts.length === 1) return parts[0];
  return { [group.op]: parts };
}

function shown(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// A value the builder can show is one that reads back as itself: not the string "5" (it would
// come back as the number 5), nor " a" (trimmed); in a list, no "" and no comma.
function faithful(value) {
  return !(value && typeof value === "object") && typed(shown(value)) === value;
}

function faithfulInList(value) {
  return faithful(value) && value !== "" && !(typeof value === "string" && value.includes(","));
}

/** JSON Logic the builder can show → a group; anything else → null (raw JSON only). */
export function fromLogic(logic) {
  const item = parseItem(logic);
  if (!item) return null;
  return item.kind === "group" ? item : { ...newGroup(), items: [item] };
}

function parseItem(logic) {
  if (logic === true) return newGroup(); // what an empty group writes
  if (!logic || typeof logic !== "object" || Array.isArray(logic)) return null;
  const keys = Object.keys(logic);
  if (keys.length !== 1) return null;
  const [op] = keys;
  const args = logic[op];
  if ((op === "and" || op === "or") && Array.isArray(args)) {
    const items = args.map(parseItem);
    return items.every(Boolean) ? { kind: "group", op, items } : null;
  }
  if (!OPERATORS.includes(op) || !Array.isArray(args) || args.length !== 2) return null;
  const [left, right] = args;
  if (!left || typeof left !== "object" || typeof left.var !== "string" || Object.keys(left).length !== 1) return null;
  if (op === "in") {
    if (!Array.isArray(right) || !right.every(faithfulInList)) return null;
    return { kind: "cond", field: left.var, operator: op, value: right.map(shown).join(", ") };
  }
  if (!faithful(right)) return null;
  return { kind: "cond", field: left.var, operator: op, value: shown(right) };
}

// -- edits of the tree (in place: the builder's state is this tree) -----------------------------

/** Add a nested group to ``group``, combining the other way (and ↔ or). */
export function addGroup(group) {
  group.items.push(newGroup(group.op === "and" ? "or" : "and"));
}

/** Remove ``item`` from ``parent``. */
export function removeItem(parent, item) {
  const at = parent.items.indexOf(item);
  if (at >= 0) parent.items.splice(at, 1);
}

/** The field picker's options: the event type's fields, and the condition's own field first
 * when it is not one of them (a condition written by hand). */
export function fieldOptions(paths, field) {
  return !field || paths.includes(field) ? paths : [field, ...paths];
}
