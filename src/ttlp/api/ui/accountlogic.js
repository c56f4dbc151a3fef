// Accounts' plain logic: who is the owner, scopes typed as text, invite links and expiries,
// what a form may send. No DOM here (tests/js/accountlogic.test.mjs).

import { isOwner } from "./nav.js";

export const MIN_PASSWORD = 8;
export const MAX_PASSWORD = 1024;
export const ROLES = ["MODERATOR", "VIEWER", "STREAMER"];
export const EXPIRY_CHOICES = [
  { value: 86400, label: "1 day" },
  { value: 3 * 86400, label: "3 days" },
  { value: 7 * 86400, label: "7 days" },
];
const USERNAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const HANDLE_RE = /^[A-Za-z0-9_.]{1,64}$/;
const RESERVED = ["invites"];

export { isOwner }; // the shell's (nav.js): it decides who sees the Accounts view

/** Whether ``account`` is the only owner among ``accounts`` (it may not be demoted, narrowed,
 *  disabled or deleted: the server refuses too). */
export function isLastOwner(account, accounts) {
  return isOwner(account) && accounts.filter(isOwner).length === 1;
}

/** Scopes typed as text ("luna.beats, @other" or "*") → {scopes} or {error}. */
export function parseScopes(text) {
  const items = [...new Set(String(text ?? "").split(/[\s,]+/).map((s) => s.replace(/^@/, "").toLowerCase()).filter(Boolean))];
  if (!items.length) return { error: "Give a streamer handle (or * for every streamer)." };
  if (items.includes("*")) return { scopes: ["*"] };
  const bad = items.filter((s) => !HANDLE_RE.test(s));
  if (bad.length) return { error: `Not a TikTok handle: ${bad.join(", ")}` };
  return { scopes: items };
}

/** Scopes as the edit field shows them: "*" or "luna.beats, other". */
export function scopeInput(scopes) {
  return (scopes ?? []).join(", ");
}

/** Scopes as a sentence: "every streamer" or "@luna.beats, @other". */
export function scopeText(scopes) {
  if (!scopes?.length) return "no streamer";
  return scopes.includes("*") ? "every streamer" : scopes.map((s) => `@${s}`).join(", ");
}

/** "" when a username can be used, else why not. */
export function usernameProblem(name) {
  if (!name) return "Choose a username.";
  if (!USERNAME_RE.test(name)) return "A username is 1-64 letters, digits or . _ @ - (no spaces).";
  if (RESERVED.includes(name.toLowerCase())) return `"${name}" is reserved: choose another.`;
  return "";
}

/** "" when a new password (typed twice) can be used, else why not. */
export function passwordProblem(password, repeat) {
  if ((password ?? "").length < MIN_PASSWORD) return `A password needs at least ${MIN_PASSWORD} characters.`;
  if (password.length > MAX_PASSWORD) return `A password has at most ${MAX_PASSWORD} characters.`;
  if (password !== repeat) return "The two passwords differ.";
  return "";
}

/** The link to send: the page's origin and the path the API gave (``/#/invite/<token>``). */
export function inviteLink(origin, path) {
  return `${String(origin).replace(/\/+$/, "")}${path}`;
}

/** How long until ``iso``: "in 3 days", "in 5 h", "in 12 min", or "expired". */
export function expiresText(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  if (Number.isNaN(ms)) return "";
  if (ms <= 0) return "expired";
  const min = Math.round(ms / 60000);
  if (min < 60) return `in ${Math.max(1, min)} min`;
  const hours = Math.round(min / 60);
  if (hours < 48) return `in ${hours} h`;
  return `in ${Math.round(hours / 24)} days`;
}

/** The PATCH body for an account's edited role and scope text: {body} with what changed
 *  (null when nothing did), or {error}. */
export function accountChange(account, edit) {
  const body = {};
  if (edit.role && edit.role !== account.role) body.role = edit.role;
  if (edit.scope !== undefined) {
    const parsed = parseScopes(edit.scope);
    if (parsed.error) return { error: parsed.error };
    if (parsed.scopes.join(",") !== [...account.scopes].join(",")) body.scopes = parsed.scopes;
  }
  return { body: Object.keys(body).length ? body : null };
}

/** An invite (or the setup) as one line for the invitee: "moderator of @luna.beats". */
export function inviteSummary(invite) {
  const role = String(invite.role ?? "").toLowerCase();
  return invite.scopes?.includes("*") ? `${role} of every streamer` : `${role} of ${scopeText(invite.scopes)}`;
}
