// The Overlays page's plain logic: overlay URLs, the options form's fields and how typed values
// become options, what a token's row says. No DOM here (tests/js/overlay-builder.test.mjs).

import { ALERT_KINDS, GOAL_METRICS, KINDS, LEADERBOARD_SCOPES, TICKER_KINDS, withDefaults } from "./overlay/options.js";
import { parseWords } from "./overlay/words.js";

export { KINDS };

export const KIND_LABELS = { alerts: "Alerts", chat: "Chat", leaderboard: "Leaderboard", goal: "Goal", ticker: "Ticker" };

/** The address OBS opens for ``kind`` (``preview``: the builder's own, replays included). */
export function overlayUrl(origin, kind, token, { preview = false } = {}) {
  const q = new URLSearchParams({ token });
  if (preview) q.set("preview", "1");
  return `${origin}/overlay/${kind}?${q}`;
}

/** The value at ``path`` ("alerts.tts.rate") of ``obj``. */
export function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

/** A copy of ``obj`` with ``value`` at ``path`` (the objects on the way copied, not shared). */
export function setPath(obj, path, value) {
  const [key, ...rest] = path.split(".");
  const copy = Array.isArray(obj) ? [...obj] : { ...obj };
  copy[key] = rest.length ? setPath(obj?.[key] ?? {}, rest.join("."), value) : value;
  return copy;
}

/** A number typed into a field: the number, or the text as typed when it is not one (the
 * server then names the field in its 400). */
export function typedNumber(text) {
  const t = String(text).trim();
  if (t === "") return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

const check = (path, label) => ({ path, label, type: "check" });
const number = (path, label, min, max, step = 1, hint = "") => ({ path, label, type: "number", min, max, step, hint });

/** The options form of each kind: groups of fields (``type``: check, number, select, text,
 * sound, key, kinds). */
export const FIELDS = {
  alerts: [
    { legend: "Show", fields: ALERT_KINDS.map((k) => check(`alerts.kinds.${k}`, `${k[0].toUpperCase()}${k.slice(1)}s`)) },
    {
      legend: "Timing",
      fields: [
        number("alerts.minCoins", "Minimum coins (gifts)", 0, 1e9, 1, "a streak counts its total"),
        number("alerts.durationMs", "Each alert (ms)", 500, 60000, 100),
        { path: "alerts.skipKey", label: "Skip key", type: "key", hint: "click, then press the key" },
      ],
    },
    {
      legend: "Sound",
      fields: [...ALERT_KINDS.map((k) => ({ path: `alerts.sounds.${k}`, label: `${k[0].toUpperCase()}${k.slice(1)}`, type: "sound" })), number("alerts.volume", "Volume (0–1)", 0, 1, 0.05)],
    },
    {
      legend: "Text-to-speech",
      fields: [
        check("alerts.tts.alerts", "Speak alerts"),
        check("alerts.tts.chat", "Speak chat"),
        number("alerts.tts.maxLength", "Max length", 1, 1000),
        number("alerts.tts.perUserSeconds", "Per user, once every (s)", 0, 3600),
        { path: "alerts.tts.voice", label: "Voice", type: "text", list: "overlay-voices", hint: "empty: the browser's default" },
        number("alerts.tts.rate", "Rate", 0.1, 10, 0.1),
      ],
    },
  ],
  chat: [
    {
      legend: "Chat",
      fields: [number("chat.maxMessages", "Messages shown", 1, 200), number("chat.fontSize", "Font size (px)", 6, 128), check("chat.showBadges", "Badges"), check("chat.emoteImages", "Emotes as pictures")],
    },
  ],
  leaderboard: [
    {
      legend: "Leaderboard",
      fields: [{ path: "leaderboard.scope", label: "Gifts of", type: "select", choices: LEADERBOARD_SCOPES.map((s) => [s, s === "session" ? "this session" : "this stream (every session of the room)"]) }, number("leaderboard.count", "Rows", 1, 50)],
    },
  ],
  goal: [
    {
      legend: "Goal",
      fields: [
        { path: "goal.metric", label: "Counts", type: "select", choices: GOAL_METRICS.map((m) => [m, m]) },
        number("goal.target", "Target", 1, 1e12),
        { path: "goal.title", label: "Title", type: "text", hint: "empty: “Likes goal”…" },
      ],
    },
  ],
  ticker: [
    {
      legend: "Ticker",
      fields: [{ path: "ticker.kinds", label: "Shows", type: "kinds", choices: TICKER_KINDS }, number("ticker.count", "Items", 1, 100), number("ticker.speedPxPerS", "Speed (px/s)", 1, 2000)],
    },
  ],
};

/** The form's draft of a token's options: the options, and the banned words as typed. */
export function newDraft(options) {
  const full = withDefaults(options);
  return { options: full, bannedText: full.common.bannedWords.join("\n") };
}

/** The PUT body of a draft: every option, the banned words read from the text. Empty text
 * fields that mean "none" (the voice) become null. */
export function draftBody(draft) {
  let body = setPath(draft.options, "common.bannedWords", parseWords(draft.bannedText));
  const voice = getPath(body, "alerts.tts.voice");
  if (typeof voice === "string" && !voice.trim()) body = setPath(body, "alerts.tts.voice", null);
  return body;
}

/** Whether the draft differs from the saved options. */
export function isDirty(draft, saved) {
  return JSON.stringify(draftBody(draft)) !== JSON.stringify(withDefaults(saved));
}

/** A ticker kind switched on or off, the list kept in the order of ``TICKER_KINDS``. */
export function toggleKind(kinds, kind, on) {
  const set = new Set(kinds);
  if (on) set.add(kind);
  else set.delete(kind);
  return TICKER_KINDS.filter((k) => set.has(k));
}

/** The sounds a token's options may name: those of its streamer. */
export function soundsOf(sounds, streamer) {
  return (sounds ?? []).filter((s) => s.streamer === streamer);
}

/** An active token of ``streamer`` (to play its sounds through /overlay/sounds), or null. */
export function tokenFor(tokens, streamer) {
  return (tokens ?? []).find((t) => t.streamer === streamer && !t.revokedAt) ?? null;
}

/** Active tokens first (newest first), then the revoked ones. */
export function sortTokens(tokens) {
  return [...(tokens ?? [])].sort((a, b) => Boolean(a.revokedAt) - Boolean(b.revokedAt) || String(b.createdAt).localeCompare(String(a.createdAt)) || b.id - a.id);
}

/** A byte count as text: "820 B", "14.2 KiB". */
export function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KiB`;
}

/** The newest live session of a list of sessions (GET /streams/@x/sessions), or null. */
export function latestLiveSession(sessions) {
  return (sessions ?? []).filter((s) => s.type === "live").sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)))[0] ?? null;
}
