// The shell's plain logic: roles, the hash route, the stream picker, the command palette's
// filtering. No DOM here (tests/js/nav.test.mjs).

export const RANK = { VIEWER: 0, MODERATOR: 1, STREAMER: 2 };
export const PALETTE_MAX = 30;

/** Whether ``account`` has at least ``role``. */
export function mayUse(account, role) {
  return Boolean(account) && RANK[account.role] >= RANK[role];
}

/** The owner: an enabled STREAMER of scope "*" (manages the accounts). */
export function isOwner(account) {
  return Boolean(account) && account.role === "STREAMER" && (account.scopes ?? []).includes("*") && !account.disabled;
}

/** Whether ``account`` may open ``view`` ({min, owner}): its role is ``min`` or higher, and
 * for an ``owner`` view it is the owner (an enabled STREAMER of scope "*"). */
export function mayOpen(account, view) {
  if (!mayUse(account, view.min)) return false;
  return !view.owner || isOwner(account);
}

/** ``#/<view>/<param>…`` → {id, params} (decoded; id "" for an empty hash). */
export function parseHash(hash) {
  const [id = "", ...params] = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return { id, params };
}

/** The user open in the moderator view (``#/moderate/<userId>``), or null. */
export function selectedUserId(hash) {
  const { id, params } = parseHash(hash);
  return id === "moderate" && params[0] ? params[0] : null;
}

/** The handles to offer: the account's scopes (not "*"), then the streams stored so far. */
export function streamHandles(scopes, streams) {
  const handles = scopes.filter((s) => s !== "*");
  for (const s of streams) if (s.uniqueId && !handles.includes(s.uniqueId)) handles.push(s.uniqueId);
  return handles;
}

/** The stream to show: the saved one when still offered, else the first (null: none). */
export function pickStream(handles, saved) {
  return handles.includes(saved) ? saved : (handles[0] ?? null);
}

/** Palette items whose label contains the query (case-insensitive, a leading "@" ignored). */
export function paletteMatches(items, query, limit = PALETTE_MAX) {
  const q = query.trim().replace(/^@/, "").toLowerCase();
  return items.filter((x) => x.label.toLowerCase().includes(q)).slice(0, limit);
}

/** The highlighted row after a key press (ArrowDown / ArrowUp), kept within ``count`` rows. */
export function moveActive(active, key, count) {
  if (key === "ArrowDown") return Math.max(0, Math.min(active + 1, count - 1));
  if (key === "ArrowUp") return Math.max(active - 1, 0);
  return Math.min(active, Math.max(0, count - 1));
}
