// The chat overlay's logic: the last N messages, each user's badges, a message split into text
// and emote pictures. No DOM here (tests/js/overlay-chat.test.mjs); the view is in views.js.
//
// Badges come from the event's user (DESIGN §4, from TikTok's userIdentity and badge list):
// moderator, subscriber, and the fans-club level (``teamMemberLevel`` > 0). Banned words are
// masked with asterisks in the message and the name (the message stays, so the chat reads as
// it happened; the word does not).

import { isCdnUrl } from "../format.js";

export const BRACKETED = /^\[[^\][\s]{1,64}\]/;

/** The badges of a user, in display order: ``[{kind, text, title}]``. */
export function badgesOf(user) {
  const out = [];
  if (user?.isModerator) out.push({ kind: "moderator", text: "MOD", title: "moderator" });
  if (user?.isSubscriber) out.push({ kind: "subscriber", text: "SUB", title: "subscriber" });
  const level = Number(user?.teamMemberLevel) || 0;
  if (level > 0) out.push({ kind: "fans", text: `Lv${level}`, title: `fans club level ${level}` });
  return out;
}

/** The name a message is shown under: display name, else @handle. */
export function chatName(user) {
  return user?.displayName || (user?.uniqueId ? `@${user.uniqueId}` : "");
}

/** A message as parts: ``{text}`` and ``{emote: url, id}``, in order. An emote goes where its
 * ``placeholderIndex`` says (UTF-16 index into the message); a ``[name]`` placeholder found
 * there is replaced by the picture, otherwise the picture is inserted. An emote without a CDN
 * picture, or with ``images`` off, leaves the text as it is. ``mask`` hides banned words. */
export function messageParts(payload, { images = true, mask = (t) => t } = {}) {
  const message = String(payload?.message ?? "");
  const emotes = images
    ? (payload?.emotes ?? [])
        .filter((e) => isCdnUrl(e?.emoteImageUrl))
        .map((e, order) => ({ url: e.emoteImageUrl, id: String(e.emoteId ?? ""), at: Number.isInteger(e.placeholderIndex) ? e.placeholderIndex : Infinity, order }))
        .sort((a, b) => a.at - b.at || a.order - b.order)
    : [];
  const parts = [];
  const text = (t) => {
    if (t) parts.push({ text: mask(t) });
  };
  let pos = 0;
  for (const e of emotes) {
    let at = Math.min(Math.max(e.at, pos), message.length);
    // Never split a surrogate pair (an emoji) in two.
    if (at > 0 && at < message.length && /[\uDC00-\uDFFF]/.test(message[at])) at += 1;
    text(message.slice(pos, at));
    pos = at;
    const placeholder = message.slice(at).match(BRACKETED);
    if (placeholder) pos += placeholder[0].length;
    parts.push({ emote: e.url, id: e.id });
  }
  text(message.slice(pos));
  return parts;
}

/** The last ``max`` chat events, oldest first, each once (by eventId). */
export class ChatLog {
  constructor(max = 20) {
    this.max = max;
    this.items = [];
    this.ids = new Set();
  }

  setMax(max) {
    this.max = Math.max(1, Math.floor(Number(max) || 1));
    this.trim();
  }

  /** Add a CHAT event; whether it was new. */
  add(ev) {
    if (ev?.eventType !== "CHAT" || this.ids.has(ev.eventId)) return false;
    this.items.push(ev);
    this.ids.add(ev.eventId);
    this.trim();
    return true;
  }

  /** Start over from ``events`` (the server's recent messages, oldest first). */
  reset(events) {
    this.items = [];
    this.ids.clear();
    for (const ev of events ?? []) this.add(ev);
  }

  trim() {
    while (this.items.length > this.max) this.ids.delete(this.items.shift().eventId);
  }
}
