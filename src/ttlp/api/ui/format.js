// Text the views show, from plain data: times, an event's line in the feed, labels, summaries.
// No DOM here (unit-tested with node --test, tests/js/format.test.mjs).

const CDN_HOSTS = [".tiktokcdn.com", ".tiktokcdn-us.com", ".ttwstatic.com"];

/** Whether ``url`` is an https URL on TikTok's CDN (the only images the CSP lets in). */
export function isCdnUrl(url) {
  if (typeof url !== "string") return false;
  try {
    const u = new URL(url);
    return u.protocol === "https:" && CDN_HOSTS.some((host) => u.hostname.endsWith(host));
  } catch {
    return false;
  }
}

// ``locale`` / ``timeZone``: the browser's own unless given (tests pin them).
function valid(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The time of day of an ISO instant (24 h), "" when there is none. */
export function time(iso, { locale = [], timeZone } = {}) {
  const d = valid(iso);
  return d ? d.toLocaleTimeString(locale, { hour12: false, timeZone }) : "";
}

/** Date and time of an ISO instant (24 h), "—" when there is none. */
export function dateTime(iso, { locale = [], timeZone } = {}) {
  const d = valid(iso);
  return d ? d.toLocaleString(locale, { hour12: false, timeZone }) : "—";
}

export const BADGES = {
  CHAT: "chat", GIFT: "gift", LIKE: "like", JOIN: "join", FOLLOW: "follow", SHARE: "share",
  SUBSCRIBE: "sub", EMOTE: "emote", BATTLE: "battle", ROOM_USER: "viewers", CONNECTED: "connected",
  DISCONNECTED: "disconnected", ERROR: "error", STREAM_END: "end", RAW: "raw",
};

/** The badge of an event type (its own name for a type the UI does not know). */
export function badge(eventType) {
  return BADGES[eventType] ?? eventType;
}

/** Whether an event has a real TikTok user (system events carry "0" or none). */
export function hasUser(user) {
  return Boolean(user?.userId) && user.userId !== "0";
}

/** The tooltip of a user: "Display (id)", or the id. */
export function userTitle(user) {
  return user.displayName ? `${user.displayName} (${user.userId})` : user.userId;
}

/** A gift's name, count and coins as shown in its row. */
export function giftParts(payload) {
  const p = payload || {};
  return { name: p.giftName || `gift ${p.giftId}`, count: `×${p.giftCount ?? 1}`, coins: `${p.coins ?? 0} coins` };
}

/** The text of an event's row (a GIFT's is in ``giftParts``). */
export function bodyText(ev) {
  const p = ev.payload || {};
  switch (ev.eventType) {
    case "CHAT":
      return p.message ?? "";
    case "LIKE":
      return `+${p.likeCount ?? 0} likes (total ${p.totalLikeCount ?? "?"})`;
    case "JOIN":
      return "joined";
    case "FOLLOW":
      return "followed";
    case "SHARE":
      return "shared the stream";
    case "SUBSCRIBE":
      return p.subMonth ? `subscribed (month ${p.subMonth})` : "subscribed";
    case "EMOTE":
      return "sent an emote";
    case "BATTLE": {
      const who = (p.participants || []).map((x) => `@${x.uniqueId ?? x.userId}${x.score != null ? ` ${x.score}` : ""}`);
      return `${p.battleStatus ?? ""} ${who.join(" vs ")}`;
    }
    case "ROOM_USER":
      return `${p.viewerCount ?? "?"} watching (${p.totalViewers ?? "?"} total)`;
    case "CONNECTED":
      return `connected via ${p.provider ?? "?"}`;
    case "DISCONNECTED":
      return `disconnected: ${p.reason ?? p.code ?? ""}`;
    case "ERROR":
      return `${p.code ?? "error"}: ${p.message ?? ""}`;
    case "STREAM_END":
      return `stream ended ${p.reason ?? ""}`;
    case "RAW":
      return p.rawType ?? "raw";
    default:
      return ev.eventType;
  }
}

/** An event as one line of a picker: "when · @who what". */
export function eventLabel(ev, opts) {
  const who = ev.user?.uniqueId ? `@${ev.user.uniqueId}` : "";
  const p = ev.payload ?? {};
  let what = "";
  if (ev.eventType === "GIFT") what = `${p.giftName ?? "gift"} ×${p.giftCount ?? 1} (${p.coins ?? 0} coins)`;
  else if (p.message) what = String(p.message).slice(0, 40);
  return `${dateTime(ev.timestamp, opts)} · ${who} ${what}`.trim();
}

/** A chip's text: its type in lower case, words apart. */
export function chipLabel(type) {
  return type.toLowerCase().replace("_", " ");
}

export function countText(shown, received) {
  return `${shown} shown · ${received} received`;
}

export function feedStatusText(status, note = "") {
  return `● ${status}${note ? ` (${note})` : ""}`;
}

/** A leaderboard's person: "@handle", or "(hidden)" when the viewer may not see who. */
export function person(row) {
  return row.uniqueId ? `@${row.uniqueId}` : "(hidden)";
}

export function ruleCooldown(rule) {
  return `${rule.cooldownS}s / ${rule.userCooldownS}s per user`;
}

/** The cells of one rule execution: when, status, reason, rendered, error, ms. */
export function executionCells(x, opts) {
  return [dateTime(x.createdAt, opts), x.status, x.reason ?? "", x.rendered ?? "", x.error ?? "", x.durationMs ?? ""].map(String);
}

/** A 400's problems as lines: the message, then one line per listed problem. */
export function errorLines(err) {
  const extra = Array.isArray(err.extra) ? err.extra : [];
  return [err.message, ...extra.map((x) => `${x.key ?? ""}${x.key ? ": " : ""}${x.message ?? JSON.stringify(x)}`)];
}

/** A dead letter's payload as text: a string as it is, anything else as indented JSON. */
export function payloadText(payload) {
  return typeof payload === "string" ? payload : JSON.stringify(payload, null, 2);
}

export function dlqSummary(total) {
  return `${total} in ttlc:dlq across every stage and streamer. Retry sends a letter back where it failed; Purge deletes it (so do \`ttlp dlq retry|purge <id>\`).`;
}

/** What a retry or purge did: ``{retried, queued, skipped: [{id, reason}], purged}`` → a line. */
export function dlqOutcome(op, outcome) {
  const n = (count) => `${count} dead letter${count === 1 ? "" : "s"}`;
  if (op === "purge") return `${n(outcome.purged.length)} purged`;
  const parts = [];
  if (outcome.retried.length) parts.push(`${n(outcome.retried.length)} retried`);
  if (outcome.queued.length) parts.push(`${n(outcome.queued.length)} queued for the running ttlp`);
  if (outcome.skipped.length) parts.push(`${n(outcome.skipped.length)} not retried: ${outcome.skipped[0].reason}`);
  return parts.join(" · ") || "nothing retried";
}

/** A session's head lines: who/type/provider/count (what is unknown left out, never "null"),
 *  then start and end ("running" while a live session is). */
export function sessionLines(s, opts) {
  const known = (x) => x !== null && x !== undefined && x !== "";
  const events = known(s.eventCount) ? `${Number(s.eventCount).toLocaleString("en-US")} events` : null;
  const end = s.live ? "running" : `ended ${dateTime(s.endedAt, opts)}`;
  return [
    [`@${s.uniqueId ?? "?"}`, s.type, s.provider, events].filter(known).join(" · "),
    `started ${dateTime(s.createdAt, opts)} · ${end}${s.interrupted ? " (interrupted: ttlp stopped without closing it)" : ""}`,
  ];
}

/** A duration in seconds as m:ss, or h:mm:ss from an hour on. */
export function duration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${String(m).padStart(2, "0")}:${sec}`;
}

/** A live session's coverage: "complete", or each gap as "missing 00:42 at 21:13:05 (why)";
 *  null for a replay or a session fetched without it. */
export function coverageLines(s, opts) {
  if (s.complete === null || s.complete === undefined) return null;
  if (s.complete) return ["complete: connected all the while the streamer was live"];
  return (s.gaps ?? []).map((g) => `missing ${duration(g.seconds)} at ${time(g.start, opts)} (${g.reason})`);
}

/** The progress line of a replay: what the poll saw of the new session so far. */
export function replayProgress(count, total) {
  if (total !== null && count >= total) return { text: `replayed: ${count} events`, done: true };
  return { text: `replaying: ${count} / ${total ?? "?"} events`, done: false };
}

/** The ingest report of the picked streamer (the mock's when only the mock reports), or null. */
export function pickIngestReport(reports, stream) {
  const mine = reports.find((r) => r.uniqueId === stream);
  if (mine) return mine;
  return reports.length === 1 && reports[0].uniqueId === "mock" ? reports[0] : null;
}

const INGEST_STATES = {
  starting: "starting",
  checking: "checking whether live…",
  connected: "connected",
  waiting_for_live: "waiting for live",
  backing_off: "backing off",
  waiting_for_lease: "held by another replica",
  stopped: "stopped",
  finished: "finished",
};

/** The header's ingest line: {text, title (the reason), state (for colour)}. ``report``
 *  undefined: the status could not be fetched; null: nobody reports on this streamer. */
export function ingestStatusText(report, opts) {
  if (report === undefined) return { text: "ingest: ?", title: "GET /ingest/status failed", state: "unknown" };
  if (report === null) return { text: "ingest: no report", title: "no ingest role watches this streamer", state: "unknown" };
  const parts = [`ingest: ${INGEST_STATES[report.state] ?? report.state}`];
  if (report.state === "connected" && report.lastMessageAgeS !== null && report.lastMessageAgeS !== undefined) {
    parts.push(`last message ${Math.round(report.lastMessageAgeS)} s ago`);
  }
  if (report.until && (report.state === "backing_off" || report.state === "waiting_for_live")) {
    parts.push(`${report.state === "backing_off" ? "until" : "next check"} ${time(report.until, opts)}`);
  }
  if (report.reconnectsToday) parts.push(`${report.reconnectsToday} reconnect${report.reconnectsToday === 1 ? "" : "s"} today`);
  if (report.stale) parts.push(`stale: no report since ${time(report.updatedAt, opts)}`);
  const state = report.stale ? "stale" : report.state;
  return { text: parts.join(" · "), title: report.reason ?? "", state };
}


/** A figure as the pages write it (1,234); "—" for none. */
export function figure(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US");
}
const count = figure;

/** A session's summary (GET /sessions/{id}/summary) as [label, value] rows for the session
 *  page; "—" where there is nothing to show (never "null"). */
export function summaryRows(x) {
  const gaps = x.gaps ?? [];
  const missing = gaps.reduce((sum, g) => sum + g.seconds, 0);
  const coverage =
    x.complete === null || x.complete === undefined
      ? "—"
      : x.complete
        ? "complete"
        : `${gaps.length} gap${gaps.length === 1 ? "" : "s"}, ${duration(missing)} missing`;
  const types = Object.entries(x.eventsByType ?? {})
    .map(([type, n]) => `${badge(type)} ${count(n)}`)
    .join(" · ");
  return [
    ["duration", x.durationSeconds === null || x.durationSeconds === undefined ? "—" : duration(x.durationSeconds) + (x.live ? " (live)" : "")],
    ["coverage", coverage],
    ["events", `${count(x.eventCount)}${types ? ` (${types})` : ""}`],
    ["chat messages", count(x.chatMessages)],
    ["coins", count(x.coins)],
    ["gifts", count(x.gifts)],
    ["unique gifters", count(x.uniqueGifters)],
    ["new followers", count(x.newFollowers)],
    ["shares", count(x.shares)],
    ["subscriptions", count(x.subscriptions)],
    ["peak viewers", count(x.peakViewers)],
    ["average viewers", count(x.averageViewers)],
  ];
}

/** A top gifter's line (in a numbered list): "@handle — 1,234 coins · 3 gifts"; without
 *  identities (VIEWER), "1,234 coins · 3 gifts". */
export function gifterLine(g) {
  const who = g.uniqueId ? `@${g.uniqueId} — ` : g.userId ? `${g.userId} — ` : "";
  return `${who}${count(g.coins)} coins · ${count(g.gifts)} gift${g.gifts === 1 ? "" : "s"}`;
}

/** The summary cells of a sessions-list row (GET …/sessions?summary=true): duration, events,
 *  coins, unique gifters, peak viewers. */
export function sessionCells(x) {
  return [
    x.durationSeconds === null || x.durationSeconds === undefined ? "—" : duration(x.durationSeconds),
    count(x.eventCount),
    count(x.coins),
    count(x.uniqueGifters),
    count(x.peakViewers),
  ];
}
