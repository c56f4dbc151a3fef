// The overlay options (the server's defaults, camelCase as GET /overlays/tokens/{id}/options
// returns them) and the overlay kinds. No DOM here (tests/js/overlay-feed.test.mjs).

export const KINDS = ["alerts", "chat", "leaderboard", "goal", "ticker"];
export const ALERT_KINDS = ["follow", "share", "subscribe", "gift"];
export const GOAL_METRICS = ["likes", "coins", "follows", "subscriptions"];
export const LEADERBOARD_SCOPES = ["session", "stream"];
export const TICKER_KINDS = ["FOLLOW", "GIFT", "SUBSCRIBE", "SHARE", "CHAT", "LIKE", "JOIN", "EMOTE"];

export const DEFAULTS = Object.freeze({
  common: { bannedWords: [] },
  alerts: {
    kinds: { follow: true, share: true, subscribe: true, gift: true },
    minCoins: 0,
    durationMs: 5000,
    sounds: { follow: null, share: null, subscribe: null, gift: null },
    volume: 0.8,
    tts: { alerts: false, chat: false, maxLength: 200, perUserSeconds: 30, voice: null, rate: 1.0 },
    skipKey: "Escape",
  },
  chat: { maxMessages: 20, showBadges: true, emoteImages: true, fontSize: 18 },
  leaderboard: { scope: "session", count: 5 },
  goal: { metric: "likes", target: 1000, title: "" },
  ticker: { kinds: ["FOLLOW", "GIFT"], count: 10, speedPxPerS: 60 },
});

function isObject(x) {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

/** ``given`` laid over ``base``, object by object (arrays and scalars replace); a value of the
 * wrong shape (an object where a number belongs, or the reverse) keeps the base's. */
export function merge(base, given) {
  if (!isObject(base)) return given === undefined ? base : given;
  const out = {};
  for (const [key, value] of Object.entries(base)) {
    const next = isObject(given) ? given[key] : undefined;
    if (next === undefined) out[key] = structuredClone(value);
    else if (isObject(value)) out[key] = isObject(next) ? merge(value, next) : structuredClone(value);
    else if (value !== null && isObject(next)) out[key] = structuredClone(value);
    else out[key] = structuredClone(next);
  }
  return out;
}

/** Every option, the server's answer over the defaults (it fills them too; this keeps the page
 * working with an older or partial answer). */
export function withDefaults(options) {
  return merge(DEFAULTS, options ?? {});
}
