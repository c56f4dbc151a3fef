// Dead letters (STREAMER): what a stage of the pipeline gave up on, newest first (GET /dlq).
// Payloads are shown as text (a <pre> with textContent), never as HTML.

import { api, qs } from "./api.js";
import { dateTime, h } from "./dom.js";

const STAGES = ["", "normalizer", "store", "forwarder"];
const PAGE = 50;

function payloadText(payload) {
  return typeof payload === "string" ? payload : JSON.stringify(payload, null, 2);
}

function letterRow(x) {
  return h(
    "tr",
    { dataset: { id: x.id, stage: x.stage } },
    h("td", { text: dateTime(x.time) }),
    h("td", { text: x.stage }),
    h("td", { class: "reason", text: x.reason }),
    h("td", { class: "dlq-error", text: x.error }),
    h("td", { class: "room", text: x.streamId ?? "—" }),
    h(
      "td",
      {},
      h("details", {}, h("summary", { text: x.rawType || "payload" }), h("pre", { class: "payload", text: payloadText(x.payload) })),
    ),
  );
}

export function mountDeadLetters(root) {
  const stage = h(
    "select",
    { name: "stage", "aria-label": "Stage" },
    STAGES.map((s) => h("option", { value: s, text: s || "every stage" })),
  );
  const summary = h("p", { class: "muted dlq-summary" });
  const body = h("tbody");
  const older = h("button", { type: "button", class: "older", text: "Older" });
  older.hidden = true;
  let next = null;
  let alive = true;

  const load = async (append = false) => {
    let page;
    try {
      page = await api(`/dlq${qs({ limit: PAGE, stage: stage.value, before: append ? next : "" })}`);
    } catch (err) {
      summary.className = "error dlq-summary";
      summary.textContent = `Could not load: ${err.message}`;
      return;
    }
    if (!alive) return;
    next = page.nextBefore;
    const rows = page.items.map(letterRow);
    if (append) body.append(...rows);
    else if (rows.length) body.replaceChildren(...rows);
    else body.replaceChildren(h("tr", { class: "none" }, h("td", { colspan: 6, class: "muted", text: "No dead letters." })));
    older.hidden = !next;
    summary.className = "muted dlq-summary";
    summary.textContent = `${page.total} in ttlc:dlq across every stage and streamer. \`ttlp dlq retry <id>\` sends one back where it failed.`;
  };

  stage.addEventListener("change", () => load());
  older.addEventListener("click", () => load(true));
  root.replaceChildren(
    h("h1", { text: "Dead letters" }),
    h("div", { class: "dlq-tools" }, stage, h("button", { type: "button", class: "refresh", text: "Refresh", onclick: () => load() })),
    summary,
    h(
      "table",
      { class: "grid dead-letters" },
      h("thead", {}, h("tr", {}, ["when", "stage", "reason", "error", "room", "payload"].map((x) => h("th", { text: x })))),
      body,
    ),
    older,
  );
  load();
  return {
    destroy() {
      alive = false;
    },
  };
}
