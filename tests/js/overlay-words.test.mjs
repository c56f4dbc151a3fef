// The overlays' banned-words filter (src/ttlp/api/ui/overlay/words.js).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { bannedMatcher, cleanWords, MAX_WORDS, parseWords } from "../../src/ttlp/api/ui/overlay/words.js";

describe("banned words", () => {
  test("a word is masked case-insensitively, one asterisk per character", () => {
    const m = bannedMatcher(["darn"]);
    assert.equal(m.mask("Darn it, DARN!"), "**** it, ****!");
  });

  test("only whole words match: a banned word inside another word is left alone", () => {
    const m = bannedMatcher(["ass"]);
    assert.equal(m.mask("a class act, you ass."), "a class act, you ***.");
    assert.equal(m.test("classic"), false);
    assert.equal(m.test("ASS"), true);
  });

  test("words of other scripts match with their own case rules", () => {
    const m = bannedMatcher(["Казань"]);
    assert.equal(m.mask("привет из КАЗАНЬ!"), "привет из ******!");
  });

  test("a word in a script without spaces matches anywhere in the text", () => {
    const m = bannedMatcher(["坏蛋"]);
    assert.equal(m.mask("小明坏蛋哈哈"), "小明**哈哈");
  });

  test("a phrase matches across any run of spaces, the longest entry first", () => {
    const m = bannedMatcher(["bad", "bad   word"]);
    assert.equal(m.mask("a bad  word and bad"), "a ********* and ***");
  });

  test("drop removes the word and the spaces it leaves", () => {
    const m = bannedMatcher(["darn"]);
    assert.equal(m.drop("well darn it  darn"), "well it");
  });

  test("regular expression characters in an entry are taken literally", () => {
    const m = bannedMatcher(["a.b", "(x)"]);
    assert.equal(m.mask("a.b axb (x)"), "*** axb ***");
  });

  test("an emoji is masked as one character", () => {
    const m = bannedMatcher(["🍑"]);
    assert.equal(m.mask("nice 🍑 there"), "nice * there");
  });

  test("no words: the text comes back as it is, never null", () => {
    const m = bannedMatcher([]);
    assert.equal(m.mask("anything"), "anything");
    assert.equal(m.drop(undefined), "");
    assert.equal(m.test("anything"), false);
  });

  test("test() gives the same answer on repeated calls (no sticky lastIndex)", () => {
    const m = bannedMatcher(["darn"]);
    assert.deepEqual([m.test("darn"), m.test("darn"), m.test("x darn")], [true, true, true]);
  });

  test("cleanWords trims, collapses spaces, drops empties and repeats, and caps the list", () => {
    assert.deepEqual(cleanWords(["  a  b ", "", "A  B", null, "c"]), ["a b", "c"]);
    assert.equal(cleanWords(Array.from({ length: MAX_WORDS + 10 }, (_, i) => `w${i}`)).length, MAX_WORDS);
    assert.deepEqual(cleanWords("not a list"), []);
  });

  test("parseWords reads one word per line or comma-separated", () => {
    assert.deepEqual(parseWords("darn, heck\nshoot\n\n"), ["darn", "heck", "shoot"]);
  });
});
