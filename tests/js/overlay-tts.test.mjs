// Text-to-speech for the overlays: filtering, length, per-user rate limit, queue bound, cancel
// (src/ttlp/api/ui/overlay/tts.js), with a recording synthesizer.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cut, MAX_PENDING, RateLimit, Speaker, speechText } from "../../src/ttlp/api/ui/overlay/tts.js";
import { bannedMatcher } from "../../src/ttlp/api/ui/overlay/words.js";

class Utterance {
  constructor(text) {
    this.text = text;
    this.rate = 1;
    this.voice = null;
  }
}

function recorder(voices = []) {
  const synth = {
    spoken: [],
    cancels: 0,
    speak(u) {
      synth.spoken.push(u);
    },
    cancel() {
      synth.cancels += 1;
    },
    getVoices: () => voices,
  };
  return synth;
}

function speaker(tts = {}, bannedWords = [], voices = []) {
  const synth = recorder(voices);
  let now = 0;
  const s = new Speaker({ synth, Utterance, now: () => now });
  s.configure({ tts: { maxLength: 200, perUserSeconds: 30, rate: 1, voice: null, ...tts }, bannedWords });
  return { s, synth, at: (t) => (now = t), finish: (i) => synth.spoken[i].onend() };
}

describe("what is spoken", () => {
  test("banned words are dropped, spaces collapsed", () => {
    const { s, synth } = speaker({}, ["darn"]);
    assert.equal(s.say("well  DARN it\nnow", "1"), "well it now");
    assert.equal(synth.spoken[0].text, "well it now");
  });

  test("a text that is only banned words is not spoken at all", () => {
    const { s, synth } = speaker({}, ["darn"]);
    assert.equal(s.say("darn darn", "1"), null);
    assert.equal(synth.spoken.length, 0);
  });

  test("the text is cut to maxLength, at a word break near the end when there is one", () => {
    assert.equal(cut("hello world and more", 13), "hello world");
    assert.equal(cut("abcdefghij", 4), "abcd");
    assert.equal(cut("short", 10), "short");
    assert.equal(cut("😀😀😀", 2), "😀😀"); // code points, never half an emoji
    assert.equal(speechText("one two three", { matcher: bannedMatcher([]), maxLength: 9 }), "one two");
  });

  test("voice by name when the browser has it, and the rate", () => {
    const voices = [{ name: "Alice" }, { name: "Bob" }];
    const { s, synth } = speaker({ voice: "Bob", rate: 1.5 }, [], voices);
    s.say("hi", "1");
    assert.equal(synth.spoken[0].voice, voices[1]);
    assert.equal(synth.spoken[0].rate, 1.5);
    const other = speaker({ voice: "Nobody", rate: 99 }, [], voices);
    other.s.say("hi", "1");
    assert.equal(other.synth.spoken[0].voice, null); // the browser's default voice
    assert.equal(other.synth.spoken[0].rate, 10); // the range speech synthesis accepts
  });

  test("without speech synthesis nothing is spoken and nothing fails", () => {
    const s = new Speaker({ synth: null, Utterance: null });
    assert.equal(s.say("hi", "1"), null);
    s.cancel();
  });
});

describe("limits", () => {
  test("at most one utterance per user per perUserSeconds", () => {
    const { s, at, finish } = speaker({ perUserSeconds: 30 });
    assert.equal(s.say("first", "1"), "first");
    finish(0);
    at(29_999);
    assert.equal(s.say("too soon", "1"), null);
    assert.equal(s.say("another user", "2"), "another user");
    at(30_000);
    assert.equal(s.say("again", "1"), "again");
  });

  test("an alert is spoken whatever its user said before, and starts their window", () => {
    const { s, at } = speaker({ perUserSeconds: 30 });
    assert.equal(s.say("hi from chat", "1"), "hi from chat");
    at(1000);
    assert.equal(s.say("Zoë sent 5 Galaxy", "1", { urgent: true }), "Zoë sent 5 Galaxy");
    at(30_999);
    assert.equal(s.say("chat again", "1"), null); // 29.999 s after the alert
    at(31_000);
    assert.equal(s.say("chat again", "1"), "chat again");
  });

  test("RateLimit forgets the oldest users beyond its bound", () => {
    const limit = new RateLimit(60, 2);
    limit.allow("a", 0);
    limit.allow("b", 0);
    limit.allow("c", 0);
    assert.equal(limit.allow("a", 1), true); // forgotten
    assert.equal(limit.allow("c", 1), false);
  });

  test("at most MAX_PENDING utterances wait; an alert is queued anyway; finished ones free room", () => {
    const { s, synth, finish } = speaker({ perUserSeconds: 0 });
    for (let i = 0; i < MAX_PENDING + 2; i += 1) s.say(`chat ${i}`, String(i));
    assert.equal(synth.spoken.length, MAX_PENDING);
    assert.equal(s.say("big gift", "9", { urgent: true }), "big gift");
    finish(0);
    finish(1);
    assert.equal(s.say("room again", "10"), "room again");
  });

  test("cancel stops speaking, empties the queue, and a late end of an old utterance changes nothing", () => {
    const { s, synth, finish } = speaker({ perUserSeconds: 0 });
    for (let i = 0; i < MAX_PENDING; i += 1) s.say(`chat ${i}`, String(i));
    s.cancel();
    assert.equal(synth.cancels, 1);
    assert.equal(s.pending, 0);
    s.say("after", "x");
    finish(0); // an utterance from before the cancel reports its end late
    assert.equal(s.pending, 1);
  });

  test("reconfiguring keeps the rate limit's memory unless the window changes", () => {
    const { s } = speaker({ perUserSeconds: 30 });
    s.say("one", "1");
    s.configure({ tts: { perUserSeconds: 30 }, bannedWords: [] });
    assert.equal(s.say("two", "1"), null);
    s.configure({ tts: { perUserSeconds: 5 }, bannedWords: [] });
    assert.equal(s.say("three", "1"), "three");
  });
});
