// The banned-words filter shared by the chat box and text-to-speech. No DOM here
// (tests/js/overlay-words.test.mjs).
//
// A banned entry matches case-insensitively as a whole word (or phrase): "ass" hides "ASS" and
// "ass!" but not "class". Entries in scripts written without spaces (Chinese, Japanese, Thai)
// match anywhere in the text, since they have no word boundaries to look for. Shown text gets
// the match replaced by asterisks (one per character, so the reader sees a word was there);
// spoken text drops it (a speech engine would read the asterisks out).

const NO_SPACES = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;
const WORD_CHAR = "[\\p{L}\\p{N}\\p{M}_]";
export const MAX_WORDS = 500;

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The entries worth matching: trimmed, inner spaces collapsed, no empties or repeats. */
export function cleanWords(words) {
  const seen = new Set();
  const out = [];
  for (const raw of Array.isArray(words) ? words : []) {
    const word = String(raw ?? "").trim().replace(/\s+/g, " ");
    const key = word.toLowerCase();
    if (!word || seen.has(key)) continue;
    seen.add(key);
    out.push(word);
    if (out.length >= MAX_WORDS) break;
  }
  return out;
}

/** A matcher over ``words``: ``{mask(text), drop(text), test(text)}``. With no words every
 * function hands the text back as it is. */
export function bannedMatcher(words) {
  const clean = cleanWords(words);
  if (!clean.length) return { mask: (t) => String(t ?? ""), drop: (t) => String(t ?? ""), test: () => false };
  // Longest first: "bad word" wins over "bad" where both match.
  const parts = clean
    .sort((a, b) => b.length - a.length)
    .map((w) => {
      const body = escape(w).replace(/ /g, "\\s+");
      return NO_SPACES.test(w) ? body : `(?<!${WORD_CHAR})${body}(?!${WORD_CHAR})`;
    });
  const pattern = new RegExp(parts.join("|"), "giu");
  return {
    mask: (text) => String(text ?? "").replace(pattern, (m) => "*".repeat([...m].length)),
    drop: (text) =>
      String(text ?? "")
        .replace(pattern, " ")
        .replace(/\s+/g, " ")
        .trim(),
    test: (text) => {
      pattern.lastIndex = 0;
      const hit = pattern.test(String(text ?? ""));
      pattern.lastIndex = 0;
      return hit;
    },
  };
}

/** The banned words typed into a textarea (one per line or comma-separated) as a list. */
export function parseWords(text) {
  return cleanWords(String(text ?? "").split(/[\n,]/));
}
