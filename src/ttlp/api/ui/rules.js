// Rules: the list (enabled toggle, last executions) for MODERATOR+, and the editor for STREAMER
// (condition builder writing JSON Logic, with a JSON toggle; action, template with the
// placeholder list, a dry run against a sample or a recent real event that shows the values the
// condition read). A MODERATOR opens a rule read-only: its condition in words (or its JSON), its
// template, and the same dry run. Role gating: what the role may not do is not rendered.
//
// One state object, one ``render(state)``: handlers change the state and re-render. The
// builder's model and the form's rule are plain functions (rulebuilder.js, ruleform.js).

import { api, qs } from "./api.js";
import { mountBacktest } from "./backtest.js";
import { bind, h, toast } from "./dom.js";
import { errorLines, eventLabel, executionCells, ruleCooldown } from "./format.js";
import { lifetime } from "./lifetime.js";
import { addGroup, COMBINERS, fieldOptions, OPERATORS, removeItem } from "./logic.js";
import {
  changeCheck,
  checksFor,
  conditionText,
  defaultCheck,
  describeGroup,
  fieldLabel,
  fillFields,
  newClause,
  problems,
  TEXT_CHECKS,
  textFields,
  THRESHOLDS,
  USER_FLAGS,
  valuesRead,
} from "./rulebuilder.js";
import {
  ACTION_TYPES,
  actionFields,
  actionSummary,
  builderAvailable,
  durationLabel,
  formFromRule,
  insertToken,
  keptChoice,
  MODERATIONS,
  MUTE_DURATIONS,
  rawState,
  ruleOf,
  scopeChoices,
  storedTestRequest,
  testRequest,
  withResult,
} from "./ruleform.js";

const EXECUTIONS_POLL_MS = 3000;
const DELETE_ARM_MS = 4000;
const RECENT_EVENTS = 20;
const LIST_HEADS = ["name", "scope", "event", "action", "enabled", "priority", "cooldown", ""];
const EXECUTION_HEADS = ["when", "status", "reason", "rendered", "error", "ms"];
const ONE_COLUMN = "(max-width: 900px)"; // style.css: the editor goes below the list

// -- small form helpers --------------------------------------------------------------------------
function select(name, options, value, label, onchange) {
  return h(
    "select",
    { name, "aria-label": label ?? name, value: value === undefined ? undefined : String(value), onchange },
    options.map((o) => (typeof o === "string" ? h("option", { value: o, text: o }) : h("option", { value: o.value, text: o.label }))),
  );
}

function field(label, control, cls = "") {
  return h("label", { class: `field ${cls}`.trim() }, h("span", { text: label }), control);
}

// Builder items are keyed by identity, so a removed condition takes its row with it.
const itemKeys = new WeakMap();
let lastKey = 0;
function keyOf(item) {
  if (!itemKeys.has(item)) itemKeys.set(item, `item-${++lastKey}`);
  return itemKeys.get(item);
}

// -- the list ------------------------------------------------------------------------------------
function renderRuleRow(r, s, act) {
  const enabled = s.canEdit
    ? h("input", {
        type: "checkbox",
        class: "enabled-toggle",
        checked: r.enabled,
        disabled: s.toggling.has(r.id),
        "aria-label": `Enable ${r.name}`,
        onchange: (e) => act.toggle(r, e.target.checked),
      })
    : h("span", { text: r.enabled ? "on" : "off" });
  const armed = s.armed.has(r.id);
  return h(
    "tr",
    { key: `rule-${r.id}`, dataset: { rule: String(r.id) }, class: r.id === s.selected ? "selected" : undefined },
    h("td", { text: r.name, dataset: { label: "name" } }),
    h("td", { text: r.scope, dataset: { label: "scope" } }),
    h("td", { text: r.eventType, dataset: { label: "event" } }),
    h("td", { text: r.action?.type ?? "?", dataset: { label: "action" } }),
    h("td", { dataset: { label: "enabled" } }, enabled),
    h("td", { text: String(r.priority), dataset: { label: "priority" } }),
    h("td", { text: ruleCooldown(r), dataset: { label: "cooldown" } }),
    h(
      "td",
      { class: "rule-buttons" },
      h("button", { type: "button", class: "show-executions", text: "Executions", onclick: () => act.showExecutions(r.id) }),
      s.canEdit
        ? h("button", { type: "button", class: "edit-rule", text: "Edit", onclick: () => act.edit(r) })
        : h("button", { type: "button", class: "view-rule", text: "View", onclick: () => act.edit(r) }),
      s.canEdit
        ? h("button", {
            type: "button",
            class: "delete-rule danger",
            text: armed ? "Really delete?" : "Delete",
            dataset: armed ? { armed: "1" } : undefined,
            disabled: s.deleting.has(r.id),
            onclick: () => act.remove(r),
          })
        : null,
    ),
  );
}

function renderRuleRows(s, act) {
  if (s.loadError) return h("tr", {}, h("td", { colspan: 8, class: "error", text: `Could not load: ${s.loadError}` }));
  if (!s.rules) return null;
  if (!s.rules.length) return h("tr", {}, h("td", { colspan: 8, class: "muted", text: "No rules yet." }));
  return s.rules.map((r) => renderRuleRow(r, s, act));
}

function renderExecutions(s) {
  const x = s.executions;
  if (s.selected === null || !x) return null;
  if (x.error) return h("p", { class: "error", text: `Could not load executions: ${x.error}` });
  const rule = s.rules?.find((r) => r.id === s.selected);
  return h(
    "table",
    { class: "grid executions-table stacked" },
    h("caption", { text: `Last executions of “${rule?.name ?? s.selected}” (refreshes by itself)` }),
    h("thead", {}, h("tr", {}, EXECUTION_HEADS.map((c) => h("th", { text: c })))),
    h(
      "tbody",
      {},
      x.items.length
        ? x.items.map((e) => h("tr", { dataset: { status: e.status } }, executionCells(e).map((c, i) => h("td", { text: c, dataset: { label: EXECUTION_HEADS[i] } }))))
        : h("tr", { class: "none" }, h("td", { colspan: 6, class: "muted", text: "none yet" })),
    ),
  );
}

// -- the condition builder (STREAMER) ------------------------------------------------------------
// A condition kind's own controls: a text check reads a field, a user check a flag, a threshold a
// number; "field comparison" is the generic field / operator / value of logic.js.

function replaceItem(parent, old, next) {
  const at = parent.items.indexOf(old);
  if (at < 0) return;
  itemKeys.set(next, keyOf(old)); // the same row, other controls
  parent.items[at] = next;
}

function negateBox(c, change) {
  return h(
    "label",
    { class: "negate", title: "The opposite: the condition holds when this does not" },
    h("input", { type: "checkbox", name: "negate", checked: c.negate, onchange: (e) => change(() => (c.negate = e.target.checked)) }),
    h("span", { text: "not" }),
  );
}

function clauseControls(c, { paths, types }, change) {
  const setValue = (e) => change(() => (c.value = e.target.value));
  if (TEXT_CHECKS.includes(c.check)) {
    const fields = fieldOptions(textFields(types), c.field).map((f) => ({ value: f, label: fieldLabel(f) }));
    const value =
      c.check === "inList"
        ? h("textarea", { name: "value", rows: 2, value: c.value, placeholder: "one per line, or a, b, c", "aria-label": "Values", oninput: setValue })
        : h("input", { name: "value", value: c.value, placeholder: c.check === "startsWith" ? "!discord" : "text", "aria-label": "Text", oninput: setValue });
    return [select("field", fields, c.field, "Field", (e) => change(() => (c.field = e.target.value))), negateBox(c, change), value];
  }
  if (c.check === "user") {
    const flags = Object.entries(USER_FLAGS).map(([value, f]) => ({ value, label: f.label }));
    return [negateBox(c, change), select("flag", flags, c.flag, "User is", (e) => change(() => (c.flag = e.target.value)))];
  }
  if (c.check in THRESHOLDS) {
    return [h("input", { name: "value", type: "number", min: 0, step: "any", value: c.value, placeholder: "1000", "aria-label": THRESHOLDS[c.check].label, oninput: setValue })];
  }
  const fields = fieldOptions(paths, c.field);
  return [
    select("field", fields, c.field || fields[0], "Field", (e) => change(() => (c.field = e.target.value))),
    select("operator", OPERATORS, c.operator, "Operator", (e) => change(() => (c.operator = e.target.value))),
    h("input", { name: "value", value: c.value, placeholder: c.operator === "in" ? "a, b, c" : "value", "aria-label": "Value", oninput: setValue }),
  ];
}

function renderClause(parent, c, ctx, act) {
  const { paths, types } = ctx;
  return h(
    "div",
    { class: "cond-row", key: keyOf(c), dataset: { check: c.check } },
    select("check", checksFor(paths, types, c.check), c.check, "Condition", (e) =>
      act.builder(() => replaceItem(parent, c, changeCheck(c, e.target.value, paths, types))),
    ),
    clauseControls(c, ctx, act.builder),
    h("button", {
      type: "button",
      class: "ghost remove",
      text: "✕",
      "aria-label": "Remove condition",
      onclick: () => act.builder(() => removeItem(parent, c)),
    }),
  );
}

function renderGroup(g, parent, ctx, act) {
  const { paths, types } = ctx;
  return h(
    "div",
    { class: parent ? "cond-group nested" : "cond-group", key: keyOf(g) },
    h(
      "div",
      { class: "group-head" },
      h("span", { class: "muted", text: "Match" }),
      select("combiner", COMBINERS, g.op, "Combine with", (e) => act.builder(() => (g.op = e.target.value))),
      h("button", {
        type: "button",
        class: "add-condition",
        text: "+ condition",
        onclick: () => act.builder(() => g.items.push(newClause(defaultCheck(paths, types), paths, types))),
      }),
      parent ? null : h("button", { type: "button", class: "add-group", text: "+ group", onclick: () => act.builder(() => addGroup(g)) }),
      parent ? h("button", { type: "button", class: "ghost remove", text: "✕ group", onclick: () => act.builder(() => removeItem(parent, g)) }) : null,
    ),
    g.items.map((x) => (x.kind === "group" ? renderGroup(x, g, ctx, act) : renderClause(g, x, ctx, act))),
    g.items.length ? null : h("p", { class: "muted", text: parent ? "empty group" : "No conditions: every event of the type matches." }),
  );
}

/** The condition: the builder, or (the JSON toggle, or a condition the builder cannot show) the
 * JSON Logic itself. The JSON box is always there, hidden under the builder: it holds the rule's
 * condition either way. */
function renderCondition(e, act) {
  const f = e.form;
  const ctx = { paths: e.help.fields[f.eventType] ?? [], types: e.help.types?.[f.eventType] ?? {} };
  const json = f.mode === "json";
  const canBuild = json ? builderAvailable(f) : true;
  return [
    h(
      "div",
      { class: "condition-head" },
      h("h3", { text: "Condition" }),
      h(
        "div",
        { class: "condition-mode", role: "group", "aria-label": "Edit the condition with" },
        h("button", {
          type: "button",
          class: "ghost mode-builder",
          text: "Builder",
          "aria-pressed": String(!json),
          disabled: !canBuild,
          title: canBuild ? undefined : "The builder cannot show this condition",
          onclick: () => act.mode("builder"),
        }),
        h("button", { type: "button", class: "ghost mode-json", text: "JSON", "aria-pressed": String(json), onclick: () => act.mode("json") }),
      ),
    ),
    json ? null : h("div", { class: "builder", id: "condition-builder" }, renderGroup(f.group, null, ctx, act)),
    h(
      "label",
      { class: "field raw", hidden: !json },
      h("span", { text: "JSON Logic" }),
      h("textarea", {
        name: "condition",
        id: "rule-condition",
        rows: 5,
        spellcheck: "false",
        "aria-label": "Condition (JSON Logic)",
        value: f.raw,
        oninput: (ev) => act.raw(ev.target.value),
      }),
    ),
    json && f.rawNote ? h("p", { class: "muted raw-note", text: f.rawNote }) : null,
  ];
}

// -- the dry run (both roles) --------------------------------------------------------------------
function renderTestResult(r) {
  return h(
    "li",
    { key: r.key, class: r.matched ? "match" : "no-match", dataset: { matched: String(r.matched) } },
    h("strong", { class: "verdict", text: r.matched ? "match" : "no match" }),
    h("span", { class: "against", text: ` · ${r.label}` }),
    r.reads.length
      ? h(
          "dl",
          { class: "reads", "aria-label": "What the condition read" },
          r.reads.map((x) => [h("dt", { text: x.path }), h("dd", { text: x.value })]),
        )
      : null,
    r.rendered !== null ? h("p", { class: "rendered", text: r.rendered }) : null,
    r.reason ? h("p", { class: "muted reason", text: r.reason }) : null,
  );
}

function renderErrors(e) {
  return h("div", { class: "form-errors error", id: "rule-errors", role: "alert" }, e.errors.map((line) => h("p", { text: line })));
}

function renderTest(e, act, errors = null) {
  return [
    h("h3", { text: "Test" }),
    h(
      "div",
      { class: "test-bar" },
      select("testEvent", e.testEvents, e.testEvent, "Test against", (ev) => act.set((s) => (s.editor.testEvent = ev.target.value))),
      h("button", { type: "button", class: "ghost refresh-events", text: "↻", title: "Reload recent events", onclick: act.loadTestEvents }),
      h("button", { type: "button", class: "test-rule", text: "Test", onclick: act.test }),
    ),
    errors,
    h("ul", { class: "test-results", id: "rule-test-results" }, e.results.map(renderTestResult)),
    // The Backtest panel (its own module) goes here: ``e.backtest`` is its element, kept across
    // renders by patch() as a node already on the page.
    h("section", { class: "backtest-slot", key: "backtest-slot" }, e.backtest ?? null),
  ];
}

// -- the editor (STREAMER) -----------------------------------------------------------------------
function renderEditor(e, act) {
  const f = e.form;
  const set = (key) => (ev) => act.form({ [key]: ev.target.type === "checkbox" ? ev.target.checked : ev.target.value });
  const shown = actionFields(f);
  const types = Object.keys(e.help.fields);
  const scopes = e.scopes.includes(f.scope) || !f.scope ? e.scopes : [...e.scopes, f.scope];
  return h(
    "form",
    { class: "rule-editor", id: "rule-editor", novalidate: true, onsubmit: act.save },
    h(
      "div",
      { class: "editor-head" },
      h("h2", { text: f.editing === null ? "New rule" : `Edit rule ${f.editing}` }),
      h("button", { type: "button", class: "ghost new-rule", text: "New", onclick: () => act.edit(null) }),
    ),
    h(
      "div",
      { class: "form-grid" },
      field("Name", h("input", { name: "name", required: true, maxlength: 128, "aria-label": "Name", value: f.name, oninput: set("name") })),
      field("Scope", select("scope", scopes, f.scope, "Scope", set("scope"))),
      field("Event type", select("eventType", types.length ? types : ["GIFT"], f.eventType, "Event type", (ev) => act.eventType(ev.target.value))),
      field("Priority", h("input", { name: "priority", type: "number", min: -1000, max: 1000, "aria-label": "Priority", value: f.priority, oninput: set("priority") })),
      field("Enabled", h("input", { name: "enabled", type: "checkbox", checked: f.enabled, onchange: set("enabled") }), "check"),
    ),
    renderCondition(e, act),
    h("h3", { text: "Action" }),
    h(
      "div",
      { class: "form-grid" },
      field("Type", select("actionType", ACTION_TYPES, f.actionType, "Action type", set("actionType"))),
      h(
        "label",
        { class: "field", hidden: !shown.op },
        h("span", { text: "Moderation" }),
        select("op", MODERATIONS, f.op, "Moderation", set("op")),
      ),
      h(
        "label",
        { class: "field", hidden: !shown.duration },
        h("span", { text: "Mute for" }),
        select("durationS", MUTE_DURATIONS.map((d) => ({ value: String(d), label: durationLabel(d) })), f.durationS, "Mute duration", set("durationS")),
      ),
      h(
        "label",
        { class: "field", hidden: !shown.url },
        h("span", { text: "Webhook URL" }),
        h("input", { name: "url", type: "url", maxlength: 2048, placeholder: "https://…", "aria-label": "Webhook URL", value: f.url, oninput: set("url") }),
      ),
    ),
    h(
      "label",
      { class: "field template", hidden: !shown.template },
      h("span", { text: "Template" }),
      h("textarea", { name: "template", id: "rule-template", rows: 3, maxlength: 8192, "aria-label": "Template", value: f.template, oninput: set("template") }),
    ),
    h(
      "details",
      { class: "placeholder-help", open: e.placeholdersOpen, ontoggle: (ev) => (e.placeholdersOpen = ev.target.open) },
      h("summary", { text: "Placeholders (click to insert)" }),
      h(
        "ul",
        { class: "placeholders", id: "placeholders" },
        e.help.placeholders.map((p) =>
          h(
            "li",
            {},
            h("button", { type: "button", class: "ghost placeholder", text: `{${p.name}}`, onclick: () => act.insert(p.name) }),
            h("span", { class: "muted", text: ` ${p.description}` }),
          ),
        ),
      ),
    ),
    h("h3", { text: "Limits" }),
    h(
      "div",
      { class: "form-grid" },
      field("Cooldown (s)", h("input", { name: "cooldownS", type: "number", min: 0, "aria-label": "Cooldown (s)", value: f.cooldownS, oninput: set("cooldownS") })),
      field(
        "Per-user cooldown (s)",
        h("input", { name: "userCooldownS", type: "number", min: 0, "aria-label": "Per-user cooldown (s)", value: f.userCooldownS, oninput: set("userCooldownS") }),
      ),
      field("Skip replays", h("input", { name: "skipReplay", type: "checkbox", checked: f.skipReplay, onchange: set("skipReplay") }), "check"),
      field("Gift streak end only", h("input", { name: "streakEndOnly", type: "checkbox", checked: f.streakEndOnly, onchange: set("streakEndOnly") }), "check"),
    ),
    renderErrors(e),
    h("div", { class: "rule-warnings", id: "rule-warnings", role: "status" }, e.warnings.map((line) => h("p", { text: `⚠ ${line}` }))),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "save-rule", text: "Save" })),
    renderTest(e, act),
  );
}

// -- a rule read-only (MODERATOR) ----------------------------------------------------------------
function renderWords(d) {
  return h("li", {}, h("span", { text: d.text }), d.items.length ? h("ul", {}, d.items.map(renderWords)) : null);
}

function renderRuleView(e, act) {
  const f = e.form;
  if (!f) {
    return h(
      "section",
      { class: "rule-editor rule-view", id: "rule-view" },
      h("p", { class: "muted", text: "Choose a rule (View) to read its condition and template and to try it against an event." }),
    );
  }
  const rule = ruleOf(f); // the stored rule: its JSON parses
  const json = h("pre", { class: "condition-json", text: JSON.stringify(rule.condition, null, 2) });
  return h(
    "section",
    { class: "rule-editor rule-view", id: "rule-view" },
    h("div", { class: "editor-head" }, h("h2", { text: f.name }), h("span", { class: "muted", text: "read-only" })),
    h(
      "dl",
      { class: "facts" },
      [
        ["scope", f.scope],
        ["event type", f.eventType],
        ["action", actionSummary(rule.action)],
        ["enabled", f.enabled ? "on" : "off"],
        ["priority", f.priority],
        ["cooldown", ruleCooldown(rule)],
      ].map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]),
    ),
    h("h3", { text: "Condition" }),
    f.group
      ? [
          h("ul", { class: "condition-words", id: "condition-words" }, renderWords(describeGroup(f.group))),
          h("details", { class: "condition-json-toggle" }, h("summary", { text: "JSON" }), json),
        ]
      : [h("p", { class: "muted raw-note", text: f.rawNote }), json],
    h("h3", { text: "Template" }),
    f.template ? h("pre", { class: "template-view", id: "template-view", text: f.template }) : h("p", { class: "muted", text: "none" }),
    renderTest(e, act, renderErrors(e)),
  );
}

/** The whole page from its state. */
function render(s, act) {
  const list = h(
    "div",
    { class: "rules-list" },
    h("h1", { text: "Rules" }),
    h(
      "table",
      { class: "grid rules stacked" },
      h("thead", {}, h("tr", {}, LIST_HEADS.map((x) => h("th", { text: x })))),
      h("tbody", {}, renderRuleRows(s, act)),
    ),
    h("section", { class: "executions", id: "executions" }, renderExecutions(s)),
  );
  return h("div", { class: "rules-page" }, list, s.canEdit ? renderEditor(s.editor, act) : renderRuleView(s.editor, act));
}

// -- the view ------------------------------------------------------------------------------------
export function mountRules(root, ctx) {
  const { app } = ctx;
  const canEdit = app.may("STREAMER");
  const scopes = scopeChoices(app.account.scopes, app.stream);
  const state = {
    canEdit,
    rules: null, // null until loaded
    loadError: "",
    selected: null, // rule id whose executions are shown
    executions: null, // {items} or {error} of the selected rule
    armed: new Set(), // rule ids whose Delete asks for the second click
    deleting: new Set(),
    toggling: new Set(),
    // The editor (STREAMER), or the read-only view of one rule (MODERATOR: ``form`` null until a
    // rule is chosen).
    editor: {
      help: { placeholders: [], fields: {}, types: {} },
      scopes,
      form: canEdit ? formFromRule(null, { scope: app.stream && scopes.includes(app.stream) ? app.stream : scopes[0], eventType: "GIFT" }) : null,
      testEvents: [], // [{value: "sample:GIFT" | "event:<id>", label}]
      testEvent: "",
      results: [], // dry runs, newest first
      errors: [], // lines of the last refusal
      warnings: [], // what the last save said keeps the rule from acting (announce, moderate)
      placeholdersOpen: true,
      backtest: null, // the Backtest panel's element, shown in .backtest-slot
    },
  };
  const life = lifetime();
  state.editor.backtest = mountBacktest(app, () => state.editor.form, canEdit).el;
  let resultKey = 0;

  const load = async () => {
    try {
      const rules = await api("/rules");
      update((s) => {
        s.rules = rules;
        s.loadError = "";
      });
    } catch (err) {
      update((s) => (s.loadError = err.message));
    }
  };

  const loadExecutions = async () => {
    const id = state.selected;
    if (id === null) return;
    let executions;
    try {
      executions = { items: (await api(`/rules/${id}/executions${qs({ limit: 10 })}`)).items };
    } catch (err) {
      executions = { error: err.message };
    }
    if (life.alive && state.selected === id) update((s) => (s.executions = executions));
  };

  const showExecutions = (id) => {
    update((s) => (s.selected = id));
    loadExecutions();
  };

  const loadTestEvents = async () => {
    const type = state.editor.form?.eventType;
    if (!type) return;
    const options = [{ value: `sample:${type}`, label: `sample ${type} event` }];
    if (app.stream) {
      try {
        const page = await api(`/streams/@${app.stream}/history${qs({ types: type, order: "desc", limit: RECENT_EVENTS })}`);
        for (const ev of page.items) options.push({ value: `event:${ev.eventId}`, label: eventLabel(ev) });
      } catch {
        // the sample is enough
      }
    }
    if (!life.alive || type !== state.editor.form?.eventType) return; // changed meanwhile
    update(({ editor }) => {
      editor.testEvents = options;
      editor.testEvent = keptChoice(options, editor.testEvent);
    });
  };

  /** The rule to try, as POST /rules/test takes it, and its condition; throws what is wrong. */
  const trial = () => {
    const { form } = state.editor;
    if (!canEdit) return { body: storedTestRequest(form.editing, state.editor.testEvent), condition: ruleOf(form).condition };
    const problem = form.mode === "builder" ? problems(form.group) : [];
    if (problem.length) throw Object.assign(new Error(problem[0]), { extra: problem.slice(1).map((message) => ({ message })) });
    const rule = ruleOf(form);
    return { body: testRequest(rule, state.editor.testEvent), condition: rule.condition, rule };
  };

  const act = {
    set: (change) => update(change),

    toggle: async (rule, enabled) => {
      update((s) => {
        rule.enabled = enabled;
        s.toggling.add(rule.id);
      });
      const { id, createdBy, createdAt, updatedAt, ...definition } = rule;
      try {
        const { warnings, ...saved } = await api(`/rules/${id}`, { method: "PUT", body: { ...definition, enabled } });
        Object.assign(rule, saved);
        toast(`${rule.name}: ${rule.enabled ? "enabled" : "disabled"}${warnings.length ? ` (${warnings.join("; ")})` : ""}`);
      } catch (err) {
        rule.enabled = !enabled;
        toast(`Not changed: ${err.message}`);
      }
      update((s) => s.toggling.delete(id));
    },

    // Delete asks twice: the first click arms the button for a few seconds.
    remove: async (rule) => {
      if (!state.armed.has(rule.id)) {
        update((s) => s.armed.add(rule.id));
        life.later(() => update((s) => s.armed.delete(rule.id)), DELETE_ARM_MS);
        return;
      }
      update((s) => s.deleting.add(rule.id));
      try {
        await api(`/rules/${rule.id}`, { method: "DELETE" });
      } catch (err) {
        update((s) => s.deleting.delete(rule.id));
        toast(`Not deleted: ${err.message}`);
        return;
      }
      toast(`${rule.name}: deleted`);
      update((s) => {
        s.deleting.delete(rule.id);
        s.armed.delete(rule.id);
        if (s.selected === rule.id) {
          s.selected = null;
          s.executions = null;
        }
      });
      await load();
    },

    showExecutions,

    /** Open ``rule`` in the editor, or read-only for a MODERATOR (null: a new rule, keeping the
     * scope and event type). */
    edit: (rule) => {
      update(({ editor }) => {
        const { scope, eventType } = editor.form ?? {};
        editor.form = formFromRule(rule, { scope, eventType });
        editor.errors = [];
        editor.warnings = [];
        editor.results = [];
      });
      // One column (a phone): the editor is below the list, so bring it into view.
      if (rule && window.matchMedia(ONE_COLUMN).matches) root.querySelector(".rule-editor")?.scrollIntoView({ block: "start" });
      loadTestEvents();
    },

    form: (change) => update(({ editor }) => Object.assign(editor.form, change)),

    /** An edit of the builder's tree: the JSON follows it. */
    builder: (change) =>
      update(({ editor }) => {
        change();
        editor.form.raw = conditionText(editor.form.group);
      }),

    /** The JSON typed by hand: the builder follows it when it can show it. */
    raw: (text) =>
      update(({ editor }) => {
        Object.assign(editor.form, { raw: text }, rawState(text, editor.form.group));
      }),

    /** The builder or the JSON (the builder only for JSON it can show). */
    mode: (mode) =>
      update(({ editor }) => {
        const { form } = editor;
        if (mode === "json") form.mode = "json";
        else if (builderAvailable(form)) {
          Object.assign(form, rawState(form.raw, form.group), { mode: "builder" });
          form.raw = conditionText(form.group);
        }
      }),

    eventType: (type) => {
      update(({ editor }) => {
        editor.form.eventType = type;
        if (type === "GIFT") editor.form.streakEndOnly = true;
      });
      loadTestEvents();
    },

    insert: (token) => {
      const box = root.querySelector("#rule-template");
      update(({ editor }) => (editor.form.template = insertToken(editor.form.template, token, box?.selectionStart, box?.selectionEnd)));
      box?.focus();
    },

    loadTestEvents,

    test: async () => {
      update(({ editor }) => (editor.errors = []));
      const { editor } = state;
      const choice = editor.testEvent;
      let res;
      let condition;
      try {
        const tried = trial();
        condition = tried.condition;
        res = await api("/rules/test", { method: "POST", body: tried.body });
      } catch (err) {
        update(() => (editor.errors = errorLines(err)));
        return;
      }
      const label = editor.testEvents.find((o) => o.value === choice)?.label ?? choice;
      const result = {
        key: `result-${++resultKey}`,
        matched: res.matched,
        label,
        rendered: res.rendered,
        reason: res.reason,
        reads: valuesRead(condition, res.event),
      };
      update(() => (editor.results = withResult(editor.results, result)));
    },

    save: async (e) => {
      e.preventDefault();
      update(({ editor }) => {
        editor.errors = [];
        editor.warnings = [];
      });
      const { form } = state.editor;
      let saved;
      try {
        const { rule } = trial();
        saved = form.editing === null ? await api("/rules", { method: "POST", body: rule }) : await api(`/rules/${form.editing}`, { method: "PUT", body: rule });
      } catch (err) {
        update(({ editor }) => (editor.errors = errorLines(err)));
        return;
      }
      toast(`Rule “${saved.name}” saved${saved.warnings.length ? ", with a warning" : ""}`);
      update(({ editor }) => {
        form.editing = saved.id;
        editor.warnings = saved.warnings;
      });
      await load();
      showExecutions(saved.id);
    },
  };

  const update = bind(root, state, (s) => render(s, act));
  update();
  load();
  if (canEdit) {
    api("/rules/placeholders")
      .then((help) =>
        update(({ editor }) => {
          const types = Object.keys(help.fields);
          const { form } = editor;
          editor.help = help;
          if (!types.includes(form.eventType)) form.eventType = types[0];
          if (form.group && fillFields(form.group, help.fields[form.eventType], help.types[form.eventType])) form.raw = conditionText(form.group);
        }),
      )
      .then(loadTestEvents)
      .catch((err) => update(({ editor }) => (editor.errors = errorLines(err))));
    loadTestEvents();
  }
  life.every(loadExecutions, EXECUTIONS_POLL_MS);
  return { destroy: () => life.end() };
}
