// Moderators' quick actions on a TikTok user: mute 5 minutes, kick (POST /actions/timeout,
// /actions/ban). Used by the user panel and the command palette.

import { api } from "./api.js";
import { toast } from "./dom.js";

export const MUTE_S = 300;

export const QUICK_ACTIONS = [
  { op: "mute", label: "Mute 5 min", cls: "mute-5" },
  { op: "kick", label: "Kick", cls: "kick" },
];

/** Run ``op`` (mute | kick) on ``user`` ({userId, uniqueId}) in the current stream's live room.
 * The outcome (or the server's reason for refusing, e.g. Euler not configured) is shown in the
 * user panel's result line when it is open, and as a toast. Never throws. */
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
  const line = document.querySelector(`#user-panel .action-result[data-user="${CSS.escape(user.userId)}"]`);
  if (line) {
    line.textContent = text;
    line.classList.toggle("error", !ok);
    line.classList.toggle("ok", ok);
  }
  toast(text);
  return { ok, text };
}
