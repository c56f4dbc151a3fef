// The live feed's memory: events folded into entries (a gift streak is one entry that grows
// until its end frame), the recent users, the filters of the feed panel. No DOM, no network
// here (tests/js/feedlog.test.mjs); feed.js feeds it from the EventSource, and the paged
// histories (a session's events, a user's) fold what they have loaded with ``foldHistory``.

export const FEED_CAP = 5000;
export const RECENT_USERS = 500;

/** Event types with a chip of their own; the rest (lifecycle, RAW) share "SYSTEM". */
export const CHIP_TYPES = [
  "CHAT", "GIFT", "LIKE", "JOIN", "FOLLOW", "SHARE", "SUBSCRIBE", "EMOTE", "BATTLE", "ROOM_USER", "SYSTEM",
];
const SYSTEM_TYPES = new Set(["CONNECTED", "DISCONNECTED", "ERROR", "STREAM_END", "RAW"]);

export function chipOf(eventType) {
  return SYSTEM_TYPES.has(eventType) ? "SYSTEM" : eventType;
}

/** An empty log. ``entries``: oldest first, entry = {seq, ev, ver, streakKey?}; ``ver`` grows
 * with every frame folded into the entry (the list repaints a row when it changes). */
export function newFeedLog() {
  return {
    entries: [],
    streaks: new Map(), // open streak key → its entry
    users: new Map(), // userId → user, most recent last
    received: 0,
    seq: 0,
  };
}

/** The key of a gift streak: one per user and gift in a session. */
export function streakKey(ev) {
  return `${ev.sessionId}:${ev.user?.userId}:${ev.payload?.giftId}`;
}

/** Whether a streak frame is its streak's last: the end frame, or a frame that came after the
 * ingest had closed the streak by its timeout (``streakClosed``: neither active nor an end). */
function lastFrame(payload) {
  return Boolean(payload?.streakEnd) || payload?.streakActive === false;
}

/** Fold one event into ``log``: a frame of an open streak updates that streak's entry (and
 * closes it on its last frame), anything else is a new entry. */
export function foldEvent(log, ev) {
  log.received += 1;
  const user = ev.user || {};
  if (user.userId && user.userId !== "0") {
    log.users.delete(user.userId);
    log.users.set(user.userId, user);
    if (log.users.size > RECENT_USERS) log.users.delete(log.users.keys().next().value);
  }
  const p = ev.payload || {};
  if (ev.eventType === "GIFT" && p.isGiftStreak) {
    const key = streakKey(ev);
    const open = log.streaks.get(key);
    if (open) {
      open.ev = ev;
      open.ver += 1;
      if (lastFrame(p)) log.streaks.delete(key);
      return open;
    }
    const entry = { seq: ++log.seq, ev, ver: 0, streakKey: key };
    log.entries.push(entry);
    if (!lastFrame(p)) log.streaks.set(key, entry);
    return entry;
  }
  const entry = { seq: ++log.seq, ev, ver: 0 };
  log.entries.push(entry);
  return entry;
}

/** Drop the oldest entries beyond ``cap`` (and the open streaks they were). */
export function trimLog(log, cap = FEED_CAP) {
  const excess = log.entries.length - cap;
  if (excess <= 0) return;
  for (const old of log.entries.splice(0, excess)) {
    if (old.streakKey && log.streaks.get(old.streakKey) === old) log.streaks.delete(old.streakKey);
  }
}

/** Whether an entry is a streak still growing (its row says so). */
export function isOpenStreak(entry) {
  return Boolean(entry?.streakKey) && !lastFrame(entry.ev.payload);
}

/** A history loaded page by page (a session's events, a user's) as the feed shows it: each
 * gift streak one entry. Everything loaded so far is folded again, oldest first, whenever a
 * page arrives, so a streak cut by a page boundary is one entry, not two: loaded oldest first,
 * its entry grows (still marked open) when the next page brings the rest of its frames;
 * loaded newest first (``newestFirst``: entries come back that way too), its entry shows the
 * streak's last frame from the start and takes in the earlier frames as they come. */
export function foldHistory(events, { newestFirst = false } = {}) {
  const log = newFeedLog();
  for (const ev of newestFirst ? [...events].reverse() : events) foldEvent(log, ev);
  return newestFirst ? log.entries.reverse() : log.entries;
}

/** The chips on after "only this type" (a long press, a right-click, the "only…" menu). */
export function onlyChip(type) {
  return new Set([type]);
}

/** Whether every chip is on: the "all types" control has nothing to do. */
export function allChipsOn(types) {
  return CHIP_TYPES.every((type) => types.has(type));
}

/** The filter of the feed panel from what its controls hold: chips on, search text, user box. */
export function feedFilter({ types, search = "", user = "" }) {
  return { types, q: search.trim().toLowerCase(), user: user.trim().replace(/^@/, "").toLowerCase() };
}

export function matches(ev, filter) {
  if (!filter.types.has(chipOf(ev.eventType))) return false;
  const user = ev.user || {};
  if (filter.user) {
    const u = filter.user;
    if ((user.uniqueId || "").toLowerCase() !== u && user.userId !== u) return false;
  }
  if (filter.q) {
    const p = ev.payload || {};
    const text = `${p.message ?? ""} ${p.giftName ?? ""} ${user.uniqueId ?? ""} ${user.displayName ?? ""}`;
    if (!text.toLowerCase().includes(filter.q)) return false;
  }
  return true;
}

/** The entries the panel shows, newest first, and how many of them came after ``sinceSeq``
 * (the list keeps a scrolled view still by that many rows). */
export function visibleEntries(entries, filter, sinceSeq = Infinity) {
  const items = [];
  let added = 0;
  for (let i = entries.length - 1; i >= 0; i -= 1) {
    const entry = entries[i];
    if (!matches(entry.ev, filter)) continue;
    items.push(entry);
    if (entry.seq > sinceSeq) added += 1;
  }
  return { items, added };
}
