// Dead letters (STREAMER): what a stage of the pipeline gave up on, newest first (GET /dlq).
// Payloads are shown as text (a <pre> with textContent), never as HTML.

import { api, qs } from "./api.js";
import { bind, h } from "./dom.js";
import { dateTime, dlqSummary, payloadText } from "./format.js";
import { lifetime } from "./lifetime.js";

const STAGES = ["", "normalizer", "store", "forwarder"];
const PAGE = 50;

function letterRow(x, s) {
  return h(
    "tr",
    { key: x.id, dataset: { id: x.id, stage: x.stage } },
    h("td", { text: dateTime(x.time) }),
    h("td", { text: x.stage }),
    h("td", { class: "reason", text: x.reason }),
    h("td", { class: "dlq-error", text: x.error }),
    h("td", { class: "room", text: x.streamId ?? "—" }),
    h(
      "td",
      {},
      h(
        "details",
        { open: s.open.has(x.id), ontoggle: (e) => (e.target.open ? s.open.add(x.id) : s.open.delete(x.id)) },
        h("summary", { text: x.rawType || "payload" }),
        h("pre", { class: "payload", text: payloadText(x.payload) }),
      ),
    ),
  );
}

function render(s, act) {
  return [
    h("h1", { text: "Dead letters" }),
    h(
      "div",
      { class: "dlq-tools" },
      h("select", { name: "stage", "aria-label": "Stage", value: s.stage, onchange: (e) => act.stage(e.target.value) }, STAGES.map((x) => h("option", { value: x, text: x || "every stage" }))),
      h("button", { type: "button", class: "refresh", text: "Refresh", onclick: () => act.load() }),
    ),
    h("p", { class: s.error ? "error dlq-summary" : "muted dlq-summary", text: s.error ? `Could not load: ${s.error}` : s.total === null ? "" : dlqSummary(s.total) }),
    h(
      "table",
      { class: "grid dead-letters" },
      h("thead", {}, h("tr", {}, ["when", "stage", "reason", "error", "room", "payload"].map((x) => h("th", { text: x })))),
      h(
        "tbody",
        {},
        s.items === null
          ? null
          : s.items.length
            ? s.items.map((x) => letterRow(x, s))
            : h("tr", { class: "none" }, h("td", { colspan: 6, class: "muted", text: "No dead letters." })),
      ),
    ),
    h("button", { type: "button", class: "older", text: "Older", hidden: !s.next, onclick: () => act.load(true) }),
  ];
}

export function mountDeadLetters(root) {
  const state = {
    stage: "",
    items: null, // null until loaded
    next: null, // cursor of the older page
    total: null,
    error: "",
    open: new Set(), // ids whose payload is unfolded
  };
  const life = lifetime();

  const act = {
    load: async (append = false) => {
      let page;
      try {
        page = await api(`/dlq${qs({ limit: PAGE, stage: state.stage, before: append ? state.next : "" })}`);
      } catch (err) {
        if (life.alive) update((s) => (s.error = err.message));
        return;
      }
      if (!life.alive) return;
      update((s) => {
        s.items = append ? [...s.items, ...page.items] : page.items;
        s.next = page.nextBefore;
        s.total = page.total;
        s.error = "";
      });
    },
    stage: (stage) => {
      update((s) => (s.stage = stage));
      act.load();
    },
  };

  const update = bind(root, state, (s) => render(s, act));
  update();
  act.load();
  return { destroy: () => life.end() };
}
