// Text-to-speech of alerts and chat through the browser's own speech synthesis
// (``window.speechSynthesis``: no cloud service). The synthesizer and the utterance class are
// passed in, so this runs under node (tests/js/overlay-tts.test.mjs) and a browser test can
// record what would be spoken.
//
// What is spoken: the text with banned words dropped (not masked: a voice would read the
// asterisks), white space collapsed, cut to ``maxLength`` characters (at a word break in
// its second half, when there is one); at most one utterance per TikTok user per
// ``perUserSeconds``; at most ``MAX_PENDING`` utterances waiting (a busy chat is not read out
// minutes late: the rest is dropped). An alert is always spoken (alerts already come one at a
// time, and a gift must not go unsaid because its sender chatted a moment before), and it
// starts its user's window like any utterance: their chat right after it is not read out. ``cancel()`` (the skip key) stops speech at once.

import { bannedMatcher } from "./words.js";

export const MAX_PENDING = 3;
const BREAK_FROM = 0.5;

/** ``text`` cut to ``max`` characters (code points, never half an emoji), at a space in the
 * second half when there is one. */
export function cut(text, max) {
  const chars = [...text];
  const limit = Math.max(0, Math.floor(Number(max) || 0));
  if (chars.length <= limit) return text;
  let out = chars.slice(0, limit).join("");
  const space = out.lastIndexOf(" ");
  if (space >= out.length * BREAK_FROM) out = out.slice(0, space);
  return out.trimEnd();
}

/** The text to speak: banned words dropped, spaces collapsed, cut to ``maxLength``. */
export function speechText(text, { matcher, maxLength }) {
  const clean = matcher.drop(String(text ?? "")).replace(/\s+/g, " ").trim();
  return cut(clean, maxLength);
}

/** At most one ``allow`` per key per ``seconds``; remembers at most ``max`` keys. */
export class RateLimit {
  constructor(seconds, max = 5000) {
    this.seconds = seconds;
    this.max = max;
    this.last = new Map();
  }

  allow(key, now) {
    const windowMs = Math.max(0, Number(this.seconds) || 0) * 1000;
    const last = this.last.get(key);
    if (last !== undefined && now - last < windowMs) return false;
    this.touch(key, now);
    return true;
  }

  /** Start ``key``'s window at ``now`` whatever it was. */
  touch(key, now) {
    this.last.delete(key);
    this.last.set(key, now);
    if (this.last.size > this.max) this.last.delete(this.last.keys().next().value);
  }
}

export class Speaker {
  /** ``synth``: a speechSynthesis (``speak``, ``cancel``, ``getVoices``), or null when the
   * browser has none (then nothing is spoken); ``Utterance``: SpeechSynthesisUtterance. */
  constructor({ synth, Utterance, now = () => Date.now() }) {
    this.synth = synth ?? null;
    this.Utterance = Utterance ?? null;
    this.now = now;
    this.pending = 0;
    this.generation = 0;
    this.configure({ tts: {}, bannedWords: [] });
  }

  configure({ tts, bannedWords }) {
    this.tts = tts ?? {};
    this.matcher = bannedMatcher(bannedWords);
    const seconds = this.tts.perUserSeconds ?? 30;
    if (!this.limit || this.limit.seconds !== seconds) this.limit = new RateLimit(seconds);
  }

  voice() {
    const wanted = this.tts.voice;
    if (!wanted || !this.synth?.getVoices) return null;
    return this.synth.getVoices().find((v) => v.name === wanted) ?? null;
  }

  /** Speak ``text`` for ``userKey`` (a TikTok user id); returns what was queued, or null with
   * nothing spoken (no synthesizer, empty after filtering, rate-limited, too much waiting).
   * ``urgent`` (an alert) is spoken whatever waits and whenever its user last spoke. */
  say(text, userKey, { urgent = false } = {}) {
    if (!this.synth || !this.Utterance) return null;
    const spoken = speechText(text, { matcher: this.matcher, maxLength: this.tts.maxLength ?? 200 });
    if (!spoken) return null;
    if (this.pending >= MAX_PENDING && !urgent) return null;
    if (userKey && urgent) this.limit.touch(userKey, this.now());
    else if (userKey && !this.limit.allow(userKey, this.now())) return null;
    const u = new this.Utterance(spoken);
    const voice = this.voice();
    if (voice) u.voice = voice;
    const rate = Number(this.tts.rate);
    if (rate > 0) u.rate = Math.min(10, Math.max(0.1, rate));
    const generation = this.generation;
    this.pending += 1;
    const done = () => {
      if (generation === this.generation) this.pending = Math.max(0, this.pending - 1);
    };
    u.onend = done;
    u.onerror = done;
    this.synth.speak(u);
    return spoken;
  }

  /** Stop speaking and drop what waits. */
  cancel() {
    this.generation += 1;
    this.pending = 0;
    this.synth?.cancel();
  }
}
