// Moderators' quick actions on a TikTok user: mute 5 minutes, kick (POST /actions/timeout,
// /actions/ban). Used by the user panel and the command palette.

import { api } from "./api.js";
import { toast } from "./dom.js";

export const MUTE_S = 300;

export const QUICK_ACTIONS = [
  { op: "mute", label: "Mute 5 min", cls: "mute-5" },
  { op: "kick", label: "Kick", cls: "kick" },
];

const watchers = new Set();

/** Call ``fn(userId, {ok, text})`` after every quick action (the user panel shows the outcome,
 * wherever the action was started from). Returns the function that stops it. */
export function onModerated(fn) {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

/** Run ``op`` (mute | kick) on ``user`` ({userId, uniqueId}) in the current stream's live room.
 * The outcome (or the server's reason for refusing, e.g. Euler not configured) goes to the
 * ``onModerated`` watchers and a toast. Never throws. */
export async function moderateUser(app, user, op) {
  const who = `@${user.uniqueId ?? user.userId}`;
  const body = { streamId: `@${app.stream}`, userId: user.userId };
  let text;
  let ok = false;
  try {
    if (op === "mute") await api("/actions/timeout", { method: "POST", body: { ...body, durationS: MUTE_S } });
    else await api("/actions/ban", { method: "POST", body });
    text = op === "mute" ? `${who} muted for 5 minutes` : `${who} kicked`;
    ok = true;
  } catch (err) {
    text = `${op === "mute" ? "Mute" : "Kick"} failed: ${err.message}`;
  }
  for (const fn of watchers) fn(user.userId, { ok, text });
  toast(text);
  return { ok, text };
}
