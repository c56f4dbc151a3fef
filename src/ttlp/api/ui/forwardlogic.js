// The Forwarding page's plain logic: a target ↔ its form and the body the API takes, what a
// target's row, a test event's result and a delivery's row say. No DOM here
// (tests/js/forward.test.mjs).

import { BADGES } from "./format.js";
import { scopeChoices } from "./ruleform.js";

/** Every event type, in the feed's order (a target with none checked forwards every type). */
export const EVENT_TYPES = Object.keys(BADGES);
export const STATUSES = ["pending", "delivered", "dead"];
export const DELIVERY_PAGE = 50;

/** The form of ``target`` (null: a new one). A new target forwards a gift streak once, its
 * end frame, as ttlp counts gifts everywhere (the API's default stays false, what targets did
 * before the switch existed). */
export function formFromTarget(target, defaults = {}) {
  return {
    editing: target?.id ?? null,
    name: target?.name ?? "",
    url: target?.url ?? "",
    scope: target?.scope ?? defaults.scope ?? "",
    eventTypes: [...(target?.eventTypes ?? [])],
    streakEndOnly: target?.streakEndOnly ?? true,
    enabled: target?.enabled ?? true,
  };
}

/** The target the API takes (POST / PUT /forward/targets): no secret, so a replace keeps it. */
export function targetBody(form) {
  return {
    name: form.name.trim(),
    url: form.url.trim(),
    scope: form.scope.trim().replace(/^@/, ""),
    eventTypes: EVENT_TYPES.filter((t) => form.eventTypes.includes(t)),
    streakEndOnly: form.streakEndOnly,
    enabled: form.enabled,
  };
}

/** ``types`` with ``type`` checked (``on``) or not, in EVENT_TYPES order. */
export function toggleType(types, type, on) {
  const chosen = new Set(types);
  if (on) chosen.add(type);
  else chosen.delete(type);
  return EVENT_TYPES.filter((t) => chosen.has(t));
}

/** The scopes a target may be given: the account's own (or ``*`` and the current stream), and
 * the one the edited target has. */
export function scopeOptions(accountScopes, stream, current = "") {
  const choices = scopeChoices(accountScopes, stream);
  return current && !choices.includes(current) ? [...choices, current] : choices;
}

export function scopeText(scope) {
  return scope === "*" ? "every streamer" : `@${scope}`;
}

export function typesText(eventTypes) {
  return eventTypes?.length ? eventTypes.join(", ") : "every type";
}

/** Whether a gift streak goes out once: only worth saying when the target forwards gifts. */
export function streakText(target) {
  const gifts = !target.eventTypes?.length || target.eventTypes.includes("GIFT");
  if (!gifts) return "";
  return target.streakEndOnly ? "gift streaks: end only" : "gift streaks: every frame";
}

export function statusText(target) {
  return target.enabled ? "active" : "paused";
}

/** A target's counts as the table shows them, and a one-line summary. */
export function countCells(counts) {
  const c = counts ?? {};
  return { delivered: c.delivered ?? 0, retried: c.retried ?? 0, dead: c.deadLettered ?? 0, pending: c.pending ?? 0 };
}

export function countsText(counts) {
  const c = countCells(counts);
  return `${c.delivered} delivered · ${c.retried} retried · ${c.dead} dead · ${c.pending} pending`;
}

/** The type a test event of ``target`` has: its first event type, CHAT when it takes all. */
export function testType(target) {
  return target.eventTypes?.length ? [...target.eventTypes].sort()[0] : "CHAT";
}

function ms(value) {
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

/** What a test event's answer (POST /forward/targets/{id}/test) says: ``{ok, text}``; the
 * receiver's own words, when it failed and said any, after a dash. */
export function testResultText(result) {
  const took = ms(result.latencyMs);
  const kind = `${result.eventType} test event`;
  if (result.ok) return { ok: true, text: `${kind}: the receiver answered ${result.statusCode} in ${took}` };
  if (result.statusCode === null || result.statusCode === undefined) return { ok: false, text: `${kind}: ${result.error || "failed"} (after ${took})` };
  const said = result.responseExcerpt ? ` — ${result.responseExcerpt.slice(0, 200)}` : "";
  return { ok: false, text: `${kind}: the receiver answered ${result.statusCode} in ${took}${said}` };
}

/** When a delivery is tried next: "—" once finished, "held (paused)" while its target is
 * paused, "now" when due, else "in 5 s" / "in 3 min" / "in 2 h". */
export function nextRetryText(delivery, paused, now = Date.now()) {
  if (delivery.status !== "pending" || !delivery.nextAttemptAt) return "—";
  if (paused) return "held (paused)";
  const wait = (new Date(delivery.nextAttemptAt).getTime() - now) / 1000;
  if (!(wait > 0.5)) return "now";
  if (wait < 90) return `in ${Math.round(wait)} s`;
  if (wait < 90 * 60) return `in ${Math.round(wait / 60)} min`;
  return `in ${Math.round(wait / 3600)} h`;
}

/** An event id shortened for a table cell (the whole id is the cell's title). */
export function shortId(id) {
  return id && id.length > 12 ? `${id.slice(0, 12)}…` : (id ?? "");
}

/** A dead or delivered delivery can be sent again; a pending one is queued already. */
export function mayRedeliver(delivery) {
  return delivery.status !== "pending";
}

/** The query of a deliveries page: the filter, the cursor, the page size. */
export function deliveriesQuery(filter, before = null, limit = DELIVERY_PAGE) {
  return { status: STATUSES.includes(filter) ? filter : "", before: before ?? "", limit };
}

/** The list after a page: appended (Older) or in place of what was shown. */
export function withPage(items, page, append) {
  if (!append) return page.items;
  const seen = new Set(items.map((x) => x.id));
  return [...items, ...page.items.filter((x) => !seen.has(x.id))];
}

/** The list with one delivery replaced by its new state (after a redeliver). */
export function withDelivery(items, delivery) {
  return items.map((x) => (x.id === delivery.id ? delivery : x));
}
