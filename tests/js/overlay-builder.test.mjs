// The Overlays page's plain logic: URLs, the options draft and its PUT body, the sounds and
// tokens it lists (src/ttlp/api/ui/overlaylogic.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULTS } from "../../src/ttlp/api/ui/overlay/options.js";
import {
  draftBody,
  FIELDS,
  getPath,
  isDirty,
  KINDS,
  latestLiveSession,
  newDraft,
  overlayUrl,
  setPath,
  sizeText,
  soundsOf,
  sortTokens,
  toggleKind,
  tokenFor,
  typedNumber,
} from "../../src/ttlp/api/ui/overlaylogic.js";

describe("URLs", () => {
  test("the OBS URL and the preview's, the token escaped", () => {
    assert.equal(overlayUrl("http://h:3000", "chat", "a+b/c"), "http://h:3000/overlay/chat?token=a%2Bb%2Fc");
    assert.equal(overlayUrl("", "goal", "t", { preview: true }), "/overlay/goal?token=t&preview=1");
  });
});

describe("the options form", () => {
  test("every field of every kind names an option that exists", () => {
    for (const kind of KINDS) {
      for (const group of FIELDS[kind]) {
        for (const f of group.fields) assert.notEqual(getPath(DEFAULTS, f.path), undefined, f.path);
      }
    }
  });

  test("setPath copies the objects on its way and leaves the original alone", () => {
    const before = { a: { b: { c: 1 }, d: [1] } };
    const after = setPath(before, "a.b.c", 2);
    assert.deepEqual(after, { a: { b: { c: 2 }, d: [1] } });
    assert.equal(before.a.b.c, 1);
    assert.equal(after.a.d, before.a.d);
  });

  test("typedNumber: numbers as numbers, empty as null, anything else as typed", () => {
    assert.deepEqual(["12", " 0.5 ", "", "abc"].map(typedNumber), [12, 0.5, null, "abc"]);
  });

  test("a draft is dirty once it differs from what is saved; the body reads the banned words", () => {
    const saved = structuredClone(DEFAULTS);
    const draft = newDraft(saved);
    assert.equal(isDirty(draft, saved), false);
    draft.options = setPath(draft.options, "goal.target", 50);
    assert.equal(isDirty(draft, saved), true);
    draft.bannedText = "darn, heck\nshoot";
    const body = draftBody(draft);
    assert.deepEqual(body.common.bannedWords, ["darn", "heck", "shoot"]);
    assert.equal(body.goal.target, 50);
  });

  test("an emptied voice is no voice (null), not an empty name", () => {
    const draft = newDraft({ alerts: { tts: { voice: "Alice" } } });
    assert.equal(draft.options.alerts.tts.voice, "Alice");
    draft.options = setPath(draft.options, "alerts.tts.voice", "  ");
    assert.equal(draftBody(draft).alerts.tts.voice, null);
    assert.equal(isDirty(draft, DEFAULTS), false);
  });

  test("the banned words typed are shown one per line", () => {
    assert.equal(newDraft({ common: { bannedWords: ["a", "b"] } }).bannedText, "a\nb");
  });

  test("toggleKind keeps the ticker's kinds in their usual order, once each", () => {
    assert.deepEqual(toggleKind(["GIFT"], "FOLLOW", true), ["FOLLOW", "GIFT"]);
    assert.deepEqual(toggleKind(["FOLLOW", "GIFT"], "FOLLOW", false), ["GIFT"]);
    assert.deepEqual(toggleKind(["GIFT"], "GIFT", true), ["GIFT"]);
  });
});

describe("lists", () => {
  const tokens = [
    { id: 1, streamer: "a", createdAt: "2025-01-01T00:00:00Z", revokedAt: "2025-01-02T00:00:00Z" },
    { id: 2, streamer: "a", createdAt: "2025-01-03T00:00:00Z", revokedAt: null },
    { id: 3, streamer: "b", createdAt: "2025-01-04T00:00:00Z", revokedAt: null },
  ];

  test("active tokens first, newest first; a sound plays through an active token of its streamer", () => {
    assert.deepEqual(sortTokens(tokens).map((t) => t.id), [3, 2, 1]);
    assert.equal(tokenFor(tokens, "a").id, 2);
    assert.equal(tokenFor(tokens, "c"), null);
  });

  test("a token's options offer the sounds of its streamer only", () => {
    const sounds = [{ id: 1, streamer: "a" }, { id: 2, streamer: "b" }];
    assert.deepEqual(soundsOf(sounds, "b").map((x) => x.id), [2]);
    assert.deepEqual(soundsOf(null, "b"), []);
  });

  test("the session to replay into the preview is the newest live one", () => {
    const sessions = [
      { id: "r", type: "replay", createdAt: "2025-01-05T00:00:00Z" },
      { id: "old", type: "live", createdAt: "2025-01-01T00:00:00Z" },
      { id: "new", type: "live", createdAt: "2025-01-04T00:00:00Z" },
    ];
    assert.equal(latestLiveSession(sessions).id, "new");
    assert.equal(latestLiveSession([]), null);
  });

  test("sizes as bytes or KiB", () => {
    assert.deepEqual([820, 2048, 14_540, 1_048_576].map(sizeText), ["820 B", "2.0 KiB", "14 KiB", "1024 KiB"]);
  });
});
