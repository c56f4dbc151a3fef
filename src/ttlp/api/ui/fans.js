// The Fans page: everyone who engaged with the picked streamer, with lifetime figures
// (GET /streams/{stream}/fans). Sortable headers, a debounced search, "Load more", the CSV
// download; each fan links to the moderator view. MODERATOR and up (the rows carry handles).

import { api, qs } from "./api.js";
import { bind, h, patch } from "./dom.js";
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
  nextSort,
  SEARCH_DEBOUNCE_MS,
  userHref,
} from "./fanslogic.js";
import { lifetime } from "./lifetime.js";

function header(s, column, act) {
  const sorted = ariaSort(s, column);
  const label = column.sort
    ? h("button", { type: "button", class: "sort", dataset: { sort: column.sort }, onclick: () => act.sortBy(column.sort) }, column.label, h("span", { class: "arrow", "aria-hidden": "true", text: sorted === "ascending" ? " ▲" : sorted === "descending" ? " ▼" : "" }))
    : column.label;
  return h("th", { scope: "col", class: column.num ? "num" : undefined, "aria-sort": sorted, dataset: { col: column.key } }, label);
}

function row(fan) {
  const { handle, name } = fanName(fan);
  return h(
    "tr",
    { key: fan.userId, dataset: { user: fan.userId } },
    h("th", { scope: "row", class: "fan" }, h("a", { href: userHref(fan), class: "handle", text: handle }), name ? h("span", { class: "display-name", text: name }) : null),
    fanCells(fan).map((text, i) => {
      const column = FAN_COLUMNS[i + 1];
      return h("td", { class: column.num ? "num" : undefined, dataset: { col: column.key }, text });
    }),
  );
}

function render(s, stream, act) {
  return [
    h("h1", { text: `Fans of @${stream}` }),
    h(
      "div",
      { class: "toolbar fans-tools" },
      h("input", { type: "search", class: "fans-search", placeholder: "Search handle or name…", "aria-label": "Search fans", value: s.typed, oninput: (e) => act.type(e.target.value) }),
      h("a", { class: "fans-csv", href: csvHref(stream, s), download: true, text: "Download CSV" }),
    ),
    h("p", { class: "muted fans-count", role: "status", text: s.error ? "" : s.loaded ? countLine(s.rows.length, s.total, s.q) : "Loading…" }),
    s.error ? h("p", { class: "error", text: `Could not load: ${s.error}` }) : null,
    h(
      "div",
      { class: "fans-scroll" },
      h(
        "table",
        { class: "grid fans", "aria-busy": s.loading ? "true" : "false" },
        h("thead", {}, h("tr", {}, FAN_COLUMNS.map((c) => header(s, c, act)))),
        h("tbody", {}, s.rows.map(row)),
      ),
    ),
    h("button", { type: "button", class: "more", text: "Load more", hidden: !s.cursor, disabled: s.loading, onclick: act.more }),
  ];
}

export function mountFans(root, ctx) {
  const stream = ctx.app.stream;
  if (!stream) {
    patch(root, h("p", { class: "muted", text: "No stream yet: waiting for the first broadcast…" }));
    return { destroy() {} };
  }
  const life = lifetime();
  const state = { ...DEFAULT_SORT, q: "", typed: "", rows: [], total: 0, cursor: null, loading: false, loaded: false, error: "" };
  let asked = 0; // the latest request wins (a sort or a search while a page is on its way)

  const load = async (more = false) => {
    const n = ++asked;
    update((s) => (s.loading = true));
    try {
      const query = fansQuery({ ...state, cursor: more ? state.cursor : null });
      const page = await api(`/streams/@${encodeURIComponent(stream)}/fans${qs(query)}`);
      if (!life.alive || n !== asked) return;
      update((s) => Object.assign(s, { rows: more ? appendPage(s.rows, page.items) : page.items, total: page.total, cursor: page.nextCursor, loading: false, loaded: true, error: "" }));
    } catch (err) {
      if (life.alive && n === asked) update((s) => Object.assign(s, { loading: false, error: err.message }));
    }
  };
  const search = debounce((text) => {
    if (!life.alive) return;
    update((s) => (s.q = text));
    load();
  }, SEARCH_DEBOUNCE_MS);
  const act = {
    sortBy: (key) => {
      update((s) => Object.assign(s, nextSort(s, key)));
      load();
    },
    type: (text) => {
      update((s) => (s.typed = text));
      search(text);
    },
    more: () => load(true),
  };
  const update = bind(root, state, (s) => render(s, stream, act));
  update();
  load();
  return {
    destroy() {
      search.cancel();
      life.end();
    },
  };
}
