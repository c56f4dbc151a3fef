// Rules: the list (enabled toggle, last executions) for MODERATOR+, and the editor for STREAMER
// (condition builder writing JSON Logic, action, template with the placeholder list, a dry run
// against a sample or a recent real event). Role gating: what the role may not do is not rendered.
//
// One state object, one ``render(state)``: handlers change the state and re-render. The
// builder's model and the form's rule are plain functions (logic.js, ruleform.js).

import { api, qs } from "./api.js";
import { bind, h, toast } from "./dom.js";
import { errorLines, eventLabel, executionCells, ruleCooldown } from "./format.js";
import { lifetime } from "./lifetime.js";
import { addCondition, addGroup, COMBINERS, fieldOptions, fillFields, OPERATORS, rawText, readRaw, removeItem } from "./logic.js";
import {
  ACTION_TYPES,
  actionFields,
  durationLabel,
  formFromRule,
  insertToken,
  keptChoice,
  MODERATIONS,
  MUTE_DURATIONS,
  ruleOf,
  scopeChoices,
  testRequest,
  withResult,
} from "./ruleform.js";

const EXECUTIONS_POLL_MS = 3000;
const DELETE_ARM_MS = 4000;
const RECENT_EVENTS = 20;
const LIST_HEADS = ["name", "scope", "event", "action", "enabled", "priority", "cooldown", ""];
const EXECUTION_HEADS = ["when", "status", "reason", "rendered", "error", "ms"];

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
    h("td", { text: r.name }),
    h("td", { text: r.scope }),
    h("td", { text: r.eventType }),
    h("td", { text: r.action?.type ?? "?" }),
    h("td", {}, enabled),
    h("td", { text: String(r.priority) }),
    h("td", { text: ruleCooldown(r) }),
    h(
      "td",
      { class: "rule-buttons" },
      h("button", { type: "button", class: "show-executions", text: "Executions", onclick: () => act.showExecutions(r.id) }),
      s.canEdit ? h("button", { type: "button", class: "edit-rule", text: "Edit", onclick: () => act.edit(r) }) : null,
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
    { class: "grid executions-table" },
    h("caption", { text: `Last executions of “${rule?.name ?? s.selected}” (refreshes by itself)` }),
    h("thead", {}, h("tr", {}, EXECUTION_HEADS.map((c) => h("th", { text: c })))),
    h(
      "tbody",
      {},
      x.items.length
        ? x.items.map((e) => h("tr", { dataset: { status: e.status } }, executionCells(e).map((c) => h("td", { text: c }))))
        : h("tr", { class: "none" }, h("td", { colspan: 6, class: "muted", text: "none yet" })),
    ),
  );
}

// -- the editor (STREAMER) -----------------------------------------------------------------------
function renderCondition(parent, cond, paths, act) {
  const options = fieldOptions(paths, cond.field);
  return h(
    "div",
    { class: "cond-row", key: keyOf(cond) },
    select("field", options, cond.field || options[0], "Field", (e) => act.builder(() => (cond.field = e.target.value))),
    select("operator", OPERATORS, cond.operator, "Operator", (e) => act.builder(() => (cond.operator = e.target.value))),
    h("input", {
      name: "value",
      value: cond.value,
      placeholder: cond.operator === "in" ? "a, b, c" : "value",
      "aria-label": "Value",
      oninput: (e) => act.builder(() => (cond.value = e.target.value)),
    }),
    h("button", {
      type: "button",
      class: "ghost remove",
      text: "✕",
      "aria-label": "Remove condition",
      onclick: () => act.builder(() => removeItem(parent, cond)),
    }),
  );
}

function renderGroup(g, parent, paths, act) {
  return h(
    "div",
    { class: parent ? "cond-group nested" : "cond-group", key: keyOf(g) },
    h(
      "div",
      { class: "group-head" },
      select("combiner", COMBINERS, g.op, "Combine with", (e) => act.builder(() => (g.op = e.target.value))),
      h("button", { type: "button", class: "add-condition", text: "+ condition", onclick: () => act.builder(() => addCondition(g, paths[0] ?? "")) }),
      parent ? null : h("button", { type: "button", class: "add-group", text: "+ group", onclick: () => act.builder(() => addGroup(g)) }),
      parent ? h("button", { type: "button", class: "ghost remove", text: "✕ group", onclick: () => act.builder(() => removeItem(parent, g)) }) : null,
    ),
    g.items.map((x) => (x.kind === "group" ? renderGroup(x, g, paths, act) : renderCondition(g, x, paths, act))),
    g.items.length ? null : h("p", { class: "muted", text: parent ? "empty group" : "No conditions: every event of the type matches." }),
  );
}

function renderTestResult(r) {
  return h(
    "li",
    { key: r.key, class: r.matched ? "match" : "no-match", dataset: { matched: String(r.matched) } },
    h("strong", { class: "verdict", text: r.matched ? "match" : "no match" }),
    h("span", { class: "against", text: ` · ${r.label}` }),
    r.rendered !== null ? h("p", { class: "rendered", text: r.rendered }) : null,
    r.reason ? h("p", { class: "muted reason", text: r.reason }) : null,
  );
}

function renderEditor(e, act) {
  const f = e.form;
  const set = (key) => (ev) => act.form({ [key]: ev.target.type === "checkbox" ? ev.target.checked : ev.target.value });
  const shown = actionFields(f);
  const types = Object.keys(e.help.fields);
  const scopes = e.scopes.includes(f.scope) || !f.scope ? e.scopes : [...e.scopes, f.scope];
  const paths = e.help.fields[f.eventType] ?? [];
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
    h("h3", { text: "Condition" }),
    h(
      "div",
      { class: "builder", id: "condition-builder" },
      f.group ? renderGroup(f.group, null, paths, act) : h("p", { class: "muted", text: "The builder cannot show this condition: the raw JSON below is used." }),
    ),
    field(
      "JSON Logic (editable)",
      h("textarea", {
        name: "condition",
        id: "rule-condition",
        rows: 4,
        spellcheck: "false",
        "aria-label": "Condition (JSON Logic)",
        value: f.raw,
        oninput: (ev) => act.raw(ev.target.value),
      }),
      "raw",
    ),
    h("p", { class: "muted raw-note", text: f.rawNote }),
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
    h("div", { class: "form-errors error", id: "rule-errors", role: "alert" }, e.errors.map((line) => h("p", { text: line }))),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "save-rule", text: "Save" })),
    h("h3", { text: "Test" }),
    h(
      "div",
      { class: "test-bar" },
      select("testEvent", e.testEvents, e.testEvent, "Test against", (ev) => act.set((s) => (s.editor.testEvent = ev.target.value))),
      h("button", { type: "button", class: "ghost refresh-events", text: "↻", title: "Reload recent events", onclick: act.loadTestEvents }),
      h("button", { type: "button", class: "test-rule", text: "Test", onclick: act.test }),
    ),
    h("ul", { class: "test-results", id: "rule-test-results" }, e.results.map(renderTestResult)),
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
      { class: "grid rules" },
      h("thead", {}, h("tr", {}, LIST_HEADS.map((x) => h("th", { text: x })))),
      h("tbody", {}, renderRuleRows(s, act)),
    ),
    h("section", { class: "executions", id: "executions" }, renderExecutions(s)),
  );
  return h("div", { class: s.editor ? "rules-page" : "rules-page read-only" }, list, s.editor ? renderEditor(s.editor, act) : null);
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
    editor: canEdit
      ? {
          help: { placeholders: [], fields: {} },
          scopes,
          form: formFromRule(null, { scope: app.stream && scopes.includes(app.stream) ? app.stream : scopes[0], eventType: "GIFT" }),
          testEvents: [], // [{value: "sample:GIFT" | "event:<id>", label}]
          testEvent: "",
          results: [], // dry runs, newest first
          errors: [], // lines of the last refusal
          placeholdersOpen: true,
        }
      : null,
  };
  const life = lifetime();
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
    const type = state.editor.form.eventType;
    const options = [{ value: `sample:${type}`, label: `sample ${type} event` }];
    if (app.stream) {
      try {
        const page = await api(`/streams/@${app.stream}/history${qs({ types: type, order: "desc", limit: RECENT_EVENTS })}`);
        for (const ev of page.items) options.push({ value: `event:${ev.eventId}`, label: eventLabel(ev) });
      } catch {
        // the sample is enough
      }
    }
    if (!life.alive || type !== state.editor.form.eventType) return; // changed meanwhile
    update(({ editor }) => {
      editor.testEvents = options;
      editor.testEvent = keptChoice(options, editor.testEvent);
    });
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
        Object.assign(rule, await api(`/rules/${id}`, { method: "PUT", body: { ...definition, enabled } }));
        toast(`${rule.name}: ${rule.enabled ? "enabled" : "disabled"}`);
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

    /** Open ``rule`` in the editor (null: a new rule, keeping the scope and event type). */
    edit: (rule) => {
      update(({ editor }) => {
        const { scope, eventType } = editor.form;
        editor.form = formFromRule(rule, { scope, eventType });
        editor.errors = [];
      });
      loadTestEvents();
    },

    form: (change) => update(({ editor }) => Object.assign(editor.form, change)),

    /** An edit of the builder's tree: the raw JSON follows it. */
    builder: (change) =>
      update(({ editor }) => {
        change();
        editor.form.raw = rawText(editor.form.group);
      }),

    /** The raw JSON typed by hand: the builder follows it when it can show it. */
    raw: (text) =>
      update(({ editor }) => {
        const { error, group } = readRaw(text);
        editor.form.raw = text;
        editor.form.rawNote = error ?? "";
        if (!error) editor.form.group = group;
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
      try {
        res = await api("/rules/test", { method: "POST", body: testRequest(ruleOf(editor.form), choice) });
      } catch (err) {
        update(() => (editor.errors = errorLines(err)));
        return;
      }
      const label = editor.testEvents.find((o) => o.value === choice)?.label ?? choice;
      const result = { key: `result-${++resultKey}`, matched: res.matched, label, rendered: res.rendered, reason: res.reason };
      update(() => (editor.results = withResult(editor.results, result)));
    },

    save: async (e) => {
      e.preventDefault();
      update(({ editor }) => (editor.errors = []));
      const { form } = state.editor;
      let saved;
      try {
        const rule = ruleOf(form);
        saved = form.editing === null ? await api("/rules", { method: "POST", body: rule }) : await api(`/rules/${form.editing}`, { method: "PUT", body: rule });
      } catch (err) {
        update(({ editor }) => (editor.errors = errorLines(err)));
        return;
      }
      toast(`Rule “${saved.name}” saved`);
      update(() => (form.editing = saved.id));
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
          if (form.group && fillFields(form.group, help.fields[form.eventType]?.[0])) form.raw = rawText(form.group);
        }),
      )
      .then(loadTestEvents)
      .catch((err) => update(({ editor }) => (editor.errors = errorLines(err))));
    loadTestEvents();
  }
  life.every(loadExecutions, EXECUTIONS_POLL_MS);
  return { destroy: () => life.end() };
}
