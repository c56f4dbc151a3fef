// Dead letters (STREAMER): what a stage of the pipeline gave up on, newest first (GET /dlq), each
// with its id; Retry sends a letter back where it failed (POST /dlq/retry), Purge deletes it
// (POST /dlq/purge), one letter or every letter shown. Both ask twice: the first click arms the
// button for a few seconds (the rules page's Delete pattern). The list reloads after either,
// and by itself every few seconds while it shows the newest page and no button is armed or
// acting (letters come while the page is open, and `ttlp dlq` in a shell retries or purges).
// Payloads are shown as text (a <pre> with textContent), never as HTML.

import { api, qs } from "./api.js";
import { bind, h, toast } from "./dom.js";
import { dateTime, dlqOutcome, dlqSummary, payloadText } from "./format.js";
import { lifetime } from "./lifetime.js";

const STAGES = ["", "normalizer", "store", "rules", "forwarder", "ingest"];
const PAGE = 50;
const ARM_MS = 4000;
const MAX_IDS = 200; // per request (the API's limit)
const ALL = "*"; // the key of the buttons that act on every letter shown
const POLL_MS = 5000; // the newest page loads again this often (see the top)

function actionButton(op, id, s, act, label) {
  const key = `${op}:${id}`;
  const armed = s.armed.has(key);
  return h("button", {
    type: "button",
    class: op === "purge" ? `${op} danger` : `${op} confirm`,
    text: armed ? `Really ${label.toLowerCase()}?` : label,
    dataset: armed ? { armed: "1" } : undefined,
    disabled: s.busy.size > 0,
    onclick: () => act.run(op, id),
  });
}

function letterRow(x, s, act) {
  const note = s.notes.get(x.id);
  return h(
    "tr",
    { key: x.id, dataset: { id: x.id, stage: x.stage } },
    h("td", { class: "letter-id", dataset: { label: "id" } }, h("code", { text: x.id })),
    h("td", { dataset: { label: "when" }, text: dateTime(x.time) }),
    h("td", { dataset: { label: "stage" }, text: x.stage }),
    h("td", { class: "reason", dataset: { label: "reason" }, text: x.reason }),
    h("td", { class: "dlq-error", dataset: { label: "error" } }, x.error, note ? h("p", { class: "dlq-note error", text: `Not retried: ${note}` }) : null),
    h("td", { class: "room", dataset: { label: "room" }, text: x.streamId ?? "—" }),
    h(
      "td",
      { dataset: { label: "payload" } },
      h(
        "details",
        { open: s.open.has(x.id), ontoggle: (e) => (e.target.open ? s.open.add(x.id) : s.open.delete(x.id)) },
        h("summary", { text: x.rawType || "payload" }),
        h("pre", { class: "payload", text: payloadText(x.payload) }),
      ),
    ),
    h("td", {}, h("div", { class: "letter-buttons" }, actionButton("retry", x.id, s, act, "Retry"), actionButton("purge", x.id, s, act, "Purge"))),
  );
}

function render(s, act) {
  const shown = s.items?.length ?? 0;
  return [
    h("h1", { text: "Dead letters" }),
    h(
      "div",
      { class: "dlq-tools" },
      h("select", { name: "stage", "aria-label": "Stage", value: s.stage, onchange: (e) => act.stage(e.target.value) }, STAGES.map((x) => h("option", { value: x, text: x || "every stage" }))),
      h("button", { type: "button", class: "refresh", text: "Refresh", onclick: () => act.load() }),
      shown ? actionButton("retry", ALL, s, act, `Retry all ${shown} shown`) : null,
      shown ? actionButton("purge", ALL, s, act, `Purge all ${shown} shown`) : null,
    ),
    h("p", { class: s.error ? "error dlq-summary" : "muted dlq-summary", text: s.error ? `Could not load: ${s.error}` : s.total === null ? "" : dlqSummary(s.total) }),
    h(
      "table",
      { class: "grid dead-letters stacked" }, // a card a letter on a phone (style.css)
      h("thead", {}, h("tr", {}, ["id", "when", "stage", "reason", "error", "room", "payload", ""].map((x) => h("th", { text: x })))),
      h(
        "tbody",
        {},
        s.items === null
          ? null
          : s.items.length
            ? s.items.map((x) => letterRow(x, s, act))
            : h("tr", { class: "none" }, h("td", { colspan: 8, class: "muted", text: "No dead letters." })),
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
    armed: new Set(), // "retry:<id>", "purge:*"…: buttons waiting for their second click
    busy: new Set(), // actions in flight (every action button waits for them)
    notes: new Map(), // id → why the last retry left it
  };
  const life = lifetime();
  let latest = 0; // the newest load's number: an answer to an older one is dropped
  let paged = false; // older pages are shown (a load by itself would fold them away)

  const act = {
    load: async (append = false) => {
      const mine = ++latest;
      paged = append;
      let page;
      try {
        page = await api(`/dlq${qs({ limit: PAGE, stage: state.stage, before: append ? state.next : "" })}`);
      } catch (err) {
        if (life.alive && mine === latest) update((s) => (s.error = err.message));
        return;
      }
      if (!life.alive || mine !== latest) return;
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

    /** Retry or purge one letter (``id``) or every letter shown (``ALL``): the first click
     * arms the button, the second acts; then the list is loaded again. */
    run: async (op, id) => {
      const key = `${op}:${id}`;
      if (!state.armed.has(key)) {
        update((s) => s.armed.add(key));
        life.later(() => update((s) => s.armed.delete(key)), ARM_MS);
        return;
      }
      const ids = id === ALL ? state.items.map((x) => x.id) : [id];
      update((s) => {
        s.armed.delete(key);
        s.busy.add(key);
      });
      const outcome = { retried: [], queued: [], skipped: [], purged: [] };
      let failed = null;
      try {
        for (let i = 0; i < ids.length; i += MAX_IDS) {
          const answer = await api(`/dlq/${op}`, { method: "POST", body: { ids: ids.slice(i, i + MAX_IDS) } });
          for (const [name, list] of Object.entries(answer)) outcome[name].push(...list);
        }
      } catch (err) {
        failed = err;
      }
      if (!life.alive) return;
      update((s) => {
        s.busy.delete(key);
        for (const x of outcome.skipped) s.notes.set(x.id, x.reason);
        for (const done of [...outcome.retried, ...outcome.queued, ...outcome.purged]) s.notes.delete(done);
      });
      toast(failed ? `Not ${op === "retry" ? "retried" : "purged"}: ${failed.message}` : dlqOutcome(op, outcome));
      await act.load();
    },
  };

  const update = bind(root, state, (s) => render(s, act));
  update();
  act.load();
  life.every(() => {
    if (!paged && !state.armed.size && !state.busy.size) act.load();
  }, POLL_MS);
  return { destroy: () => life.end() };
}
