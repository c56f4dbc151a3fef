// The Backtest panel's plain logic: the request from the editor's rule and the chosen sessions
// or time range, the NDJSON lines of the answer, the figures, chart points and labels of the
// result. No DOM here (tests/js/backtest.test.mjs).

import { dateTime, duration } from "./format.js";
import { ruleOf } from "./ruleform.js";

export const SESSIONS_SHOWN = 12;
export const MAX_OUTPUTS = 20;

const REASONS = {
  cooldown: "rule cooldown",
  user_cooldown: "per-user cooldown",
  throttled: "announcement throttle",
  replay: "replayed event (skip replays)",
  template: "template error",
  condition_error: "condition error",
  empty: "empty text",
  no_user: "no TikTok user",
};

/** What the backtest runs: the editor's rule as it is now (a STREAMER: the form, unsaved edits
 *  and all, with the id of the stored rule it edits), or the stored rule (a MODERATOR's read-only
 *  view: ``canEdit`` false). Null while no rule is open; throws when the form is not a rule yet. */
export function subjectOf(form, canEdit) {
  if (!form) return null;
  const stored = form.editing ?? null;
  if (!canEdit) return stored === null ? null : { ruleId: stored };
  const rule = ruleOf(form);
  if (!rule.name.trim()) rule.name = "unsaved rule";
  return stored === null ? { rule } : { rule, ruleId: stored };
}

/** The request body: ``subject`` over the chosen sessions, or over the stream between two
 *  local times (``datetime-local`` values). Throws what is missing. */
export function backtestRequest(subject, choice) {
  if (!subject) throw new Error("open or write a rule first");
  const body = { ...subject, outputs: MAX_OUTPUTS };
  if (choice.mode === "range") {
    if (!choice.stream) throw new Error("choose a streamer first");
    const since = localToIso(choice.since);
    const until = localToIso(choice.until);
    if (!since || !until) throw new Error("give the start and the end of the time range");
    if (since >= until) throw new Error("the range must start before it ends");
    return { ...body, stream: `@${choice.stream}`, since, until };
  }
  if (!choice.sessions.length) throw new Error("choose one or more sessions");
  return { ...body, sessions: [...choice.sessions] };
}

/** A ``datetime-local`` value (the browser's time zone) as an ISO instant; null when empty. */
export function localToIso(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** Split NDJSON as it arrives: ``text`` appended to what was left of a line → the complete
 *  lines parsed, and the rest. */
export function takeLines(rest, text) {
  const parts = (rest + text).split("\n");
  const left = parts.pop();
  const messages = parts.filter((line) => line.trim()).map((line) => JSON.parse(line));
  return { messages, rest: left };
}

/** The progress bar's value (0..1, null before the total is known) and its line. */
export function progressOf(p) {
  if (!p) return { value: null, text: "starting…" };
  const total = Math.max(p.total, p.done);
  const value = total ? p.done / total : 1;
  return {
    value,
    text: `${count(p.done)} of ${count(total)} events read · ${count(p.fires)} fire${p.fires === 1 ? "" : "s"} so far`,
  };
}

function count(n) {
  return Number(n ?? 0).toLocaleString("en-US");
}

/** Words for an ``actions_log`` reason. */
export function reasonText(reason) {
  return REASONS[reason] ?? reason;
}

/** The result's figures as [label, value] rows: what was considered, matched, fired, and why
 *  the other matches did not. */
export function figureRows(r) {
  const rows = [
    ["events considered", count(r.eventsConsidered)],
    ["matches", count(r.matches)],
    ["fires", count(r.fires)],
  ];
  for (const [reason, n] of Object.entries(r.skipped ?? {})) rows.push([`skipped: ${reasonText(reason)}`, count(n)]);
  for (const [reason, n] of Object.entries(r.failed ?? {})) rows.push([`failed: ${reasonText(reason)}`, count(n)]);
  const peak = r.firesPerBucket?.counts?.length ? Math.max(...r.firesPerBucket.counts) : 0;
  if (r.fires) rows.push([`peak per ${bucketText(r.firesPerBucket?.bucketSeconds ?? 60)}`, count(peak)]);
  rows.push(["time", `${count(r.eventsRead)} events in ${(r.elapsedMs / 1000).toFixed(2)} s`]);
  return rows;
}

/** "minute", "5 minutes", "hour", "6 hours". */
export function bucketText(seconds) {
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : `${seconds / 3600} hours`;
  const minutes = seconds / 60;
  return minutes === 1 ? "minute" : `${minutes} minutes`;
}

/** The chart's points ({t: Date, v}) and title from ``firesPerBucket``; null without one. */
export function chartOf(series) {
  if (!series || !series.counts?.length) return null;
  const start = new Date(series.start).getTime();
  const points = series.counts.map((v, i) => ({ t: new Date(start + i * series.bucketSeconds * 1000), v }));
  return { title: `Fires per ${bucketText(series.bucketSeconds)}`, points };
}

/** One output as a line: when, who, and what it would have sent (a webhook's ``text``, or the
 *  body's start when it has none). */
export function outputLine(o, opts) {
  const who = o.uniqueId ? `@${o.uniqueId}` : o.userId;
  return { when: dateTime(o.timestamp, opts), who, what: outputText(o) };
}

export function outputText(o) {
  if (o.actionType !== "webhook" || !o.rendered) return o.rendered ?? "";
  try {
    const body = JSON.parse(o.rendered);
    if (typeof body.text === "string" && body.text) return body.text;
  } catch {
    // not JSON: shown as it is
  }
  return o.rendered;
}

/** A top user's line: "@zoe.petals — 12 fires". */
export function userLine(u) {
  const who = u.uniqueId ? `@${u.uniqueId}` : u.userId;
  return `${who} — ${count(u.fires)} fire${u.fires === 1 ? "" : "s"}`;
}

/** A session as a choice: when it started, how long, its events; replays marked. */
export function sessionChoice(s, opts) {
  const parts = [dateTime(s.createdAt, opts)];
  if (s.durationSeconds !== null && s.durationSeconds !== undefined) parts.push(duration(s.durationSeconds));
  if (s.eventCount !== null && s.eventCount !== undefined) parts.push(`${count(s.eventCount)} events`);
  if (s.type === "replay") parts.push("replay");
  if (s.live) parts.push("live now");
  return { value: s.id, label: parts.join(" · ") };
}

/** The chosen sessions after the list changed: those still listed, else the newest one. */
export function keptSessions(chosen, sessions) {
  const listed = new Set(sessions.map((s) => s.id));
  const kept = chosen.filter((id) => listed.has(id));
  if (kept.length) return kept;
  const newest = sessions.find((s) => s.type !== "replay" && !s.live) ?? sessions[0];
  return newest ? [newest.id] : [];
}
