// The Fans page's plain logic (GET /streams/{stream}/fans): columns, sorting, the query, the
// CSV link, cells, pages. No DOM here (tests/js/fans.test.mjs).

import { dateTime, figure } from "./format.js";

export const PAGE_SIZE = 100;
export const SEARCH_DEBOUNCE_MS = 300;

/** The table's columns: ``sort`` = the API's sort key (null: not sortable), ``num``: a figure
 * (right-aligned). The first column is the fan (handle and name). */
export const FAN_COLUMNS = [
  { key: "fan", label: "fan", sort: null },
  { key: "coins", label: "coins", sort: "coins", num: true },
  { key: "gifts", label: "gifts", sort: "gifts", num: true },
  { key: "messages", label: "messages", sort: "messages", num: true },
  { key: "likes", label: "likes", sort: "likes", num: true },
  { key: "sessions", label: "sessions", sort: "sessions", num: true },
  { key: "firstSeen", label: "first seen", sort: "firstSeen" },
  { key: "lastSeen", label: "last seen", sort: "lastSeen" },
  { key: "flags", label: "status", sort: null },
  { key: "notes", label: "notes", sort: null, num: true },
];

export const DEFAULT_SORT = { sort: "coins", order: "desc" };

// The order a column starts in when first clicked: the longest-standing fans first for "first
// seen", the largest figure (or the latest time) first for the others.
const FIRST_ORDER = { firstSeen: "asc" };

/** The sort after a click on the column sorted by ``key``: the same column flips its order,
 * another starts in its first order. */
export function nextSort(current, key) {
  if (current.sort === key) return { sort: key, order: current.order === "desc" ? "asc" : "desc" };
  return { sort: key, order: FIRST_ORDER[key] ?? "desc" };
}

/** A header's aria-sort: "ascending" / "descending" for the sorted column, "none" for the other
 * sortable ones, undefined (no attribute) for a column that does not sort. */
export function ariaSort(current, column) {
  if (!column.sort) return undefined;
  if (current.sort !== column.sort) return "none";
  return current.order === "asc" ? "ascending" : "descending";
}

/** What the search box holds, as the API's ``q``: trimmed, "" for nothing (left out). */
export function searchText(typed) {
  return String(typed ?? "").trim().slice(0, 100);
}

/** The query of one page: sort, order, search, page size, cursor (empty values left out by
 * api.js ``qs``). */
export function fansQuery({ sort, order, q, cursor = null, limit = PAGE_SIZE }) {
  return { sort, order, q: searchText(q), limit, cursor };
}

/** The CSV download of the listing as shown (every matching fan, not one page). */
export function csvHref(stream, { sort, order, q }) {
  const params = new URLSearchParams({ format: "csv", sort, order });
  const text = searchText(q);
  if (text) params.set("q", text);
  return `/streams/@${encodeURIComponent(stream)}/fans?${params}`;
}

/** The user view of a fan: the moderator view with the user open. */
export function userHref(fan) {
  return `#/moderate/${encodeURIComponent(fan.userId)}`;
}

export { figure }; // the pages' own (format.js)

/** A fan's flags as short words: "follower", "subscriber", "moderator" (those that hold). */
export function flagWords(fan) {
  return [fan.follower && "follower", fan.subscriber && "subscriber", fan.moderator && "moderator"].filter(Boolean);
}

/** The text of each column but the first (the fan, rendered as a link), in column order. */
export function fanCells(fan, opts) {
  return FAN_COLUMNS.slice(1).map((c) => {
    if (c.key === "firstSeen" || c.key === "lastSeen") return dateTime(fan[c.key], opts);
    if (c.key === "flags") return flagWords(fan).join(" · ") || "—";
    return figure(fan[c.key]);
  });
}

/** The fan column's two lines: "@handle" and the display name (or ""). */
export function fanName(fan) {
  return { handle: fan.uniqueId ? `@${fan.uniqueId}` : fan.userId, name: fan.displayName ?? "" };
}

/** Rows after "load more": the new page appended, a fan already shown not repeated (ranks
 * move while events arrive, so a fan can reach the next page too). */
export function appendPage(rows, items) {
  const shown = new Set(rows.map((r) => r.userId));
  return [...rows, ...items.filter((x) => !shown.has(x.userId))];
}

/** The count line above the table. */
export function countLine(shown, total, q = "") {
  const fans = `${figure(total)} fan${total === 1 ? "" : "s"}`;
  const matching = searchText(q) ? ` matching “${searchText(q)}”` : "";
  if (!total) return searchText(q) ? `no fan matches “${searchText(q)}”` : "no fans yet";
  return shown < total ? `showing ${figure(shown)} of ${fans}${matching}` : `${fans}${matching}`;
}

/** ``fn`` called once ``ms`` after the last of a burst of calls (the search box: one request
 * when typing stops). ``cancel()`` drops a pending call. */
export function debounce(fn, ms, timers = globalThis) {
  let timer = null;
  const call = (...args) => {
    timers.clearTimeout(timer);
    timer = timers.setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
  call.cancel = () => {
    timers.clearTimeout(timer);
    timer = null;
  };
  return call;
}
