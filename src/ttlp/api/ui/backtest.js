// The Backtest panel of the rule editor: the rule as it is in the editor (or the stored rule, in
// a MODERATOR's read-only view) over one or more stored sessions of the stream, or over a time
// range, through POST /rules/backtest: progress while it runs (Cancel aborts the request, which
// stops the server's work), then the figures, fires over time (charts.js), the first outputs
// with the events they came from, the top users and any template errors. Nothing is sent.
//
// A component: ``mountBacktest(app, formOf, canEdit)`` returns ``{el}``, an element the rules
// page puts in its ``.backtest-slot`` and keeps across its renders; the panel renders itself
// inside it. ``formOf()`` is the editor's form now; what runs is ``backtestlogic.subjectOf`` of
// it (a STREAMER's form as edited, a MODERATOR's stored rule). Plain logic: backtestlogic.js.

import { api, qs, request } from "./api.js";
import { barChart } from "./charts.js";
import { bind, h } from "./dom.js";
import { errorLines, eventLabel } from "./format.js";
import {
  backtestRequest,
  chartOf,
  figureRows,
  keptSessions,
  outputLine,
  progressOf,
  SESSIONS_SHOWN,
  sessionChoice,
  subjectOf,
  takeLines,
  userLine,
} from "./backtestlogic.js";

const PATH = "/rules/backtest";

/** POST the backtest and hand each NDJSON line to ``onMessage`` as it comes; an error answer
 *  throws the API's HttpError (``request()``: a 401 sends people to log in). */
async function streamBacktest(body, signal, onMessage) {
  const res = await request(PATH, { method: "POST", body, accept: "application/x-ndjson", signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const taken = takeLines(rest, value);
    rest = taken.rest;
    taken.messages.forEach(onMessage);
  }
  takeLines(rest, "\n").messages.forEach(onMessage);
}

// -- rendering ---------------------------------------------------------------------------------
function renderChoice(s, act) {
  const modes = h(
    "div",
    { class: "bt-modes", role: "radiogroup", "aria-label": "Backtest over" },
    [
      ["sessions", "Sessions"],
      ["range", "Time range"],
    ].map(([value, label]) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "radio", name: "btMode", value, checked: s.mode === value, onchange: () => act.set((x) => (x.mode = value)) }),
        h("span", { text: label }),
      ),
    ),
  );
  if (s.mode === "range") {
    return [
      modes,
      h(
        "div",
        { class: "form-grid bt-range" },
        h("label", { class: "field" }, h("span", { text: "From" }), h("input", { type: "datetime-local", name: "btSince", step: 1, value: s.since, oninput: (e) => act.set((x) => (x.since = e.target.value)) })),
        h("label", { class: "field" }, h("span", { text: "Until" }), h("input", { type: "datetime-local", name: "btUntil", step: 1, value: s.until, oninput: (e) => act.set((x) => (x.until = e.target.value)) })),
      ),
      h("p", { class: "muted", text: s.stream ? `Live events of @${s.stream} in that range.` : "Choose a streamer at the top first." }),
    ];
  }
  let list;
  if (s.loadError) list = h("p", { class: "error", text: `Could not load the sessions: ${s.loadError}` });
  else if (s.sessions === null) list = h("p", { class: "muted", text: "Loading the sessions…" });
  else if (!s.sessions.length) list = h("p", { class: "muted", text: "No stored session yet." });
  else
    list = h(
      "ul",
      { class: "bt-sessions", id: "backtest-sessions" },
      s.sessions.map((x) => {
        const c = sessionChoice(x);
        return h(
          "li",
          { key: c.value },
          h(
            "label",
            { class: "check" },
            h("input", { type: "checkbox", name: "btSession", value: c.value, checked: s.chosen.includes(c.value), onchange: (e) => act.choose(c.value, e.target.checked) }),
            h("span", { text: c.label }),
          ),
        );
      }),
    );
  return [modes, list];
}

function renderRunning(s, act) {
  if (!s.running) return null;
  const p = progressOf(s.running.progress);
  return h(
    "div",
    { class: "bt-progress", id: "backtest-progress", role: "status" },
    h("progress", { max: 1, value: p.value ?? undefined, "aria-label": "Backtest progress" }),
    h("span", { class: "muted", text: p.text }),
    h("button", { type: "button", class: "ghost cancel-backtest", text: "Cancel", onclick: act.cancel }),
  );
}

function renderOutput(o) {
  const line = outputLine(o);
  return h(
    "li",
    { class: "bt-output" },
    h("div", { class: "bt-output-head" }, h("span", { class: "muted", text: line.when }), h("strong", { text: ` ${line.who}` })),
    h("p", { class: "rendered", text: line.what }),
    o.actionType === "webhook" && o.rendered
      ? h("details", {}, h("summary", { text: "webhook body" }), h("pre", { class: "bt-body", text: o.rendered }))
      : null,
    h("p", { class: "muted bt-event", text: `from ${eventLabel(o.event)}` }),
  );
}

function renderResult(r) {
  if (!r) return null;
  const chart = chartOf(r.firesPerBucket);
  return h(
    "div",
    { class: "bt-result", id: "backtest-result" },
    h(
      "table",
      { class: "grid bt-figures" },
      h("tbody", {}, figureRows(r).map(([label, value]) => h("tr", {}, h("th", { text: label }), h("td", { class: "num", text: value })))),
    ),
    r.notes.length ? h("ul", { class: "bt-notes" }, r.notes.map((n) => h("li", { text: n }))) : null,
    r.templateErrors.length
      ? h(
          "div",
          { class: "bt-template-errors error" },
          h("strong", { text: "Template errors" }),
          h("ul", {}, r.templateErrors.map((t) => h("li", { text: `${t.count.toLocaleString("en-US")} × ${t.error}` }))),
        )
      : null,
    chart ? barChart(chart.title, chart.points, "fires") : null,
    h(
      "div",
      { class: "bt-columns" },
      h(
        "section",
        { class: "bt-outputs-box" },
        h("h4", { text: r.outputs.length ? `First ${r.outputs.length} output${r.outputs.length === 1 ? "" : "s"}` : "No output" }),
        h("ol", { class: "bt-outputs", id: "backtest-outputs" }, r.outputs.map(renderOutput)),
      ),
      h(
        "section",
        { class: "bt-users-box" },
        h("h4", { text: "Top users" }),
        r.topUsers.length ? h("ol", { class: "bt-users" }, r.topUsers.map((u) => h("li", { text: userLine(u) }))) : h("p", { class: "muted", text: "none" }),
      ),
    ),
  );
}

function render(s, act) {
  return [
    h("h3", { text: "Backtest" }),
    h("p", { class: "muted", text: "Run the rule as it is now over stored sessions: cooldowns and the announcement throttle in the events' own time. Nothing is sent or recorded." }),
    renderChoice(s, act),
    h(
      "div",
      { class: "bt-bar" },
      h("button", { type: "button", class: "run-backtest", text: s.running ? "Running…" : "Backtest", disabled: Boolean(s.running), onclick: act.run }),
      h("button", { type: "button", class: "ghost refresh-sessions", text: "↻", title: "Reload the sessions", onclick: act.loadSessions }),
    ),
    renderRunning(s, act),
    h("div", { class: "form-errors error", id: "backtest-errors", role: "alert" }, s.errors.map((line) => h("p", { text: line }))),
    renderResult(s.result),
  ];
}

// -- the component -----------------------------------------------------------------------------
export function mountBacktest(app, formOf, canEdit) {
  const el = h("section", { class: "backtest", id: "backtest" });
  const state = {
    mode: "sessions",
    stream: app.stream,
    sessions: null, // the stream's latest sessions, null while loading
    loadError: "",
    chosen: [],
    since: "",
    until: "",
    running: null, // {progress} while a backtest runs
    result: null,
    errors: [],
  };
  let controller = null;

  const loadSessions = async () => {
    state.stream = app.stream;
    const path = app.stream ? `/streams/@${app.stream}/sessions` : "/sessions";
    try {
      // Without ``summary``: the list's aggregates would read every listed session's events.
      const sessions = await api(`${path}${qs({ limit: SESSIONS_SHOWN })}`);
      update((s) => {
        s.sessions = sessions;
        s.loadError = "";
        s.chosen = keptSessions(s.chosen, sessions);
      });
    } catch (err) {
      update((s) => (s.loadError = err.message));
    }
  };

  const act = {
    set: (change) => update(change),
    loadSessions,
    choose: (id, on) =>
      update((s) => {
        s.chosen = on ? [...new Set([...s.chosen, id])] : s.chosen.filter((x) => x !== id);
      }),
    cancel: () => controller?.abort(),
    run: async () => {
      let body;
      try {
        body = backtestRequest(subjectOf(formOf(), canEdit), { mode: state.mode, sessions: state.chosen, stream: app.stream, since: state.since, until: state.until });
      } catch (err) {
        update((s) => (s.errors = errorLines(err)));
        return;
      }
      const mine = new AbortController();
      controller = mine;
      update((s) => {
        s.running = { progress: null };
        s.result = null;
        s.errors = [];
      });
      try {
        await streamBacktest(body, mine.signal, (message) => {
          if (!el.isConnected) mine.abort(); // the page went away: stop the server's work too
          else if (message.type === "progress") update((s) => (s.running.progress = message));
          else if (message.type === "result") update((s) => (s.result = message));
          else update((s) => (s.errors = [message.detail ?? "the backtest failed"]));
        });
      } catch (err) {
        const lines = err.name === "AbortError" ? ["Cancelled."] : errorLines(err);
        update((s) => (s.errors = lines));
      } finally {
        if (controller === mine) controller = null;
        update((s) => (s.running = null));
      }
    },
  };

  const update = bind(el, state, (s) => render(s, act));
  update();
  loadSessions();
  return { el };
}
