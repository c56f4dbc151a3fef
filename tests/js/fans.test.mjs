// The Fans page's plain logic (src/ttlp/api/ui/fanslogic.js).

import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";

import {
  appendPage,
  ariaSort,
  countLine,
  csvHref,
  DEFAULT_SORT,
  debounce,
  FAN_COLUMNS,
  fanCells,
  fanName,
  fansQuery,
  flagWords,
  nextSort,
  PAGE_SIZE,
  searchText,
  userHref,
} from "../../src/ttlp/api/ui/fanslogic.js";

const OPTS = { locale: "en-GB", timeZone: "UTC" };
const FAN = {
  userId: "7012345678901234502",
  uniqueId: "akhmed_kzn",
  displayName: "Ахмед",
  coins: 59998,
  gifts: 2,
  messages: 4,
  likes: 60,
  sessions: 2,
  firstSeen: "2024-11-21T19:30:01.17Z",
  lastSeen: "2024-11-22T19:30:40.08Z",
  follower: true,
  subscriber: true,
  moderator: true,
  notes: 2,
};
const column = (key) => FAN_COLUMNS.find((c) => c.key === key);

describe("sorting by a column", () => {
  test("the page starts with the largest coins first, as the API does", () => {
    assert.deepEqual(DEFAULT_SORT, { sort: "coins", order: "desc" });
  });

  test("a click on the sorted column flips its order, back and forth", () => {
    assert.deepEqual(nextSort({ sort: "coins", order: "desc" }, "coins"), { sort: "coins", order: "asc" });
    assert.deepEqual(nextSort({ sort: "coins", order: "asc" }, "coins"), { sort: "coins", order: "desc" });
  });

  test("another column starts largest (or latest) first; first seen starts oldest first", () => {
    assert.deepEqual(nextSort(DEFAULT_SORT, "messages"), { sort: "messages", order: "desc" });
    assert.deepEqual(nextSort(DEFAULT_SORT, "lastSeen"), { sort: "lastSeen", order: "desc" });
    assert.deepEqual(nextSort(DEFAULT_SORT, "firstSeen"), { sort: "firstSeen", order: "asc" });
  });

  test("aria-sort names the sorted column's order, none for the others, nothing where no sort", () => {
    const s = { sort: "likes", order: "asc" };
    assert.equal(ariaSort(s, column("likes")), "ascending");
    assert.equal(ariaSort({ sort: "likes", order: "desc" }, column("likes")), "descending");
    assert.equal(ariaSort(s, column("coins")), "none");
    assert.equal(ariaSort(s, column("fan")), undefined);
    assert.equal(ariaSort(s, column("notes")), undefined);
  });

  test("every sortable column is a sort key the API takes", () => {
    const api = ["coins", "gifts", "messages", "likes", "sessions", "firstSeen", "lastSeen"];
    assert.deepEqual(FAN_COLUMNS.filter((c) => c.sort).map((c) => c.sort), api);
  });
});

describe("the query and the links", () => {
  test("a page asks for the sort, the search trimmed and the cursor", () => {
    assert.deepEqual(fansQuery({ sort: "gifts", order: "asc", q: "  zoe ", cursor: "abc" }), {
      sort: "gifts",
      order: "asc",
      q: "zoe",
      limit: PAGE_SIZE,
      cursor: "abc",
    });
    assert.equal(fansQuery({ ...DEFAULT_SORT, q: "   " }).q, "");
  });

  test("the search never exceeds what the API accepts", () => {
    assert.equal(searchText("x".repeat(150)).length, 100);
    assert.equal(searchText(undefined), "");
  });

  test("the CSV link downloads the listing as shown: sort, order and search", () => {
    assert.equal(csvHref("luna.beats", { sort: "likes", order: "asc", q: "" }), "/streams/@luna.beats/fans?format=csv&sort=likes&order=asc");
    const href = csvHref("luna.beats", { sort: "coins", order: "desc", q: " a&b=c " });
    const url = new URL(href, "http://x");
    assert.equal(url.pathname, "/streams/@luna.beats/fans");
    assert.deepEqual(Object.fromEntries(url.searchParams), { format: "csv", sort: "coins", order: "desc", q: "a&b=c" });
  });

  test("a fan links to the moderator view with the user open", () => {
    assert.equal(userHref(FAN), "#/moderate/7012345678901234502");
  });
});

describe("cells", () => {
  test("figures are written as on the other pages, times as dates", () => {
    assert.deepEqual(fanCells(FAN, OPTS), ["59,998", "2", "4", "60", "2", "21/11/2024, 19:30:01", "22/11/2024, 19:30:40", "follower · subscriber · moderator", "2"]);
    assert.equal(fanCells(FAN, OPTS).length, FAN_COLUMNS.length - 1);
  });

  test("nothing known is a dash, never null", () => {
    const cells = fanCells({ userId: "1", coins: null, firstSeen: null, follower: false }, OPTS);
    assert.equal(cells[0], "—");
    assert.equal(cells[5], "—");
    assert.equal(cells[7], "—");
    assert.ok(!cells.join(" ").includes("null"));
  });

  test("flags are the words that hold", () => {
    assert.deepEqual(flagWords({ follower: false, subscriber: true, moderator: false }), ["subscriber"]);
  });

  test("a fan is @handle and the name; the id where no handle is known", () => {
    assert.deepEqual(fanName(FAN), { handle: "@akhmed_kzn", name: "Ахмед" });
    assert.deepEqual(fanName({ userId: "42", uniqueId: null, displayName: null }), { handle: "42", name: "" });
  });
});

describe("pages and the count", () => {
  test("load more appends without repeating a fan who moved to the next page", () => {
    const rows = [{ userId: "1" }, { userId: "2" }];
    assert.deepEqual(appendPage(rows, [{ userId: "2" }, { userId: "3" }]).map((r) => r.userId), ["1", "2", "3"]);
  });

  test("the count line says how many are shown of how many", () => {
    assert.equal(countLine(100, 1234), "showing 100 of 1,234 fans");
    assert.equal(countLine(5, 5), "5 fans");
    assert.equal(countLine(1, 1, "zoe"), "1 fan matching “zoe”");
    assert.equal(countLine(0, 0), "no fans yet");
    assert.equal(countLine(0, 0, "zz"), "no fan matches “zz”");
  });
});

describe("debounce", () => {
  test("a burst of calls makes one call, with the last arguments, once typing stops", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const calls = [];
      const search = debounce((q) => calls.push(q), 300);
      search("z");
      mock.timers.tick(200);
      search("zo");
      mock.timers.tick(200);
      search("zoe");
      mock.timers.tick(299);
      assert.deepEqual(calls, []);
      mock.timers.tick(1);
      assert.deepEqual(calls, ["zoe"]);
      search("x");
      search.cancel();
      mock.timers.tick(1000);
      assert.deepEqual(calls, ["zoe"]);
    } finally {
      mock.timers.reset();
    }
  });
});
