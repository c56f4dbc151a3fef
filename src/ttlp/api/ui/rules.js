// Rules: the list (enabled toggle, last executions) for MODERATOR+, and the editor for STREAMER
// (condition builder writing JSON Logic, action, template with the placeholder list, a dry run
// against a sample or a recent real event). Role gating: what the role may not do is not rendered.

import { api, qs } from "./api.js";
import { dateTime, h, toast } from "./dom.js";

const OPERATORS = ["==", "!=", ">", ">=", "<", "<=", "in"];
const ACTION_TYPES = ["log", "announce", "moderate", "webhook"];
const MUTE_DURATIONS = [5, 30, 60, 300, -1];
const EXECUTIONS_POLL_MS = 3000;
const DELETE_ARM_MS = 4000;
const RECENT_EVENTS = 20;

// -- JSON Logic <-> builder ----------------------------------------------------------------------
// A group is {kind: "group", op: "and" | "or", items: [...]}, an item a group or
// {kind: "cond", field, operator, value} (value: the text the user typed).

function newGroup(op = "and") {
  return { kind: "group", op, items: [] };
}

/** A typed value from what was typed: numbers, true/false/null, else the text. */
function typed(text) {
  const t = String(text).trim();
  if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
  if (t === "true") return true;
  if (t === "false") return false;
  if (t === "null") return null;
  return t;
}

function condLogic(c) {
  const field = { var: c.field };
  if (c.operator === "in") return { in: [field, String(c.value).split(",").map((x) => typed(x)).filter((x) => x !== "")] };
  return { [c.operator]: [field, typed(c.value)] };
}

/** The group as JSON Logic: an empty group is ``true``, a group of one its item. */
export function toLogic(group) {
  const parts = group.items.map((x) => (x.kind === "group" ? toLogic(x) : condLogic(x)));
  if (!parts.length) return true;
  if (parts.length === 1) return parts[0];
  return { [group.op]: parts };
}

function shown(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** JSON Logic the builder can show → a group; anything else → null (raw JSON only). */
export function fromLogic(logic) {
  if (logic === true) return newGroup();
  const item = parseItem(logic);
  if (!item) return null;
  return item.kind === "group" ? item : { ...newGroup(), items: [item] };
}

function parseItem(logic) {
  if (!logic || typeof logic !== "object" || Array.isArray(logic)) return null;
  const keys = Object.keys(logic);
  if (keys.length !== 1) return null;
  const [op] = keys;
  const args = logic[op];
  if ((op === "and" || op === "or") && Array.isArray(args)) {
    const items = args.map(parseItem);
    return items.every(Boolean) ? { kind: "group", op, items } : null;
  }
  if (!OPERATORS.includes(op) || !Array.isArray(args) || args.length !== 2) return null;
  const [left, right] = args;
  if (!left || typeof left !== "object" || typeof left.var !== "string" || Object.keys(left).length !== 1) return null;
  if (op === "in") {
    if (!Array.isArray(right) || right.some((x) => x && typeof x === "object")) return null;
    return { kind: "cond", field: left.var, operator: op, value: right.map(shown).join(", ") };
  }
  if (right && typeof right === "object") return null;
  return { kind: "cond", field: left.var, operator: op, value: shown(right) };
}

// -- small form helpers --------------------------------------------------------------------------
function select(name, options, value, label) {
  const el = h("select", { name, "aria-label": label ?? name });
  el.append(...options.map((o) => (typeof o === "string" ? h("option", { value: o, text: o }) : h("option", { value: o.value, text: o.label }))));
  if (value !== undefined) el.value = String(value);
  return el;
}

function field(label, control, cls = "") {
  return h("label", { class: `field ${cls}`.trim() }, h("span", { text: label }), control);
}

function errorText(err) {
  return err.message;
}

// -- the view ------------------------------------------------------------------------------------
export function mountRules(root, ctx) {
  const { app } = ctx;
  const canEdit = app.may("STREAMER");
  const body = h("tbody");
  const executions = h("section", { class: "executions", id: "executions" });
  const timers = new Set();
  let selected = null; // rule id whose executions are shown
  let rules = [];
  let editor = null;

  const loadExecutions = async () => {
    if (selected === null) return;
    const rule = rules.find((r) => r.id === selected);
    let page;
    try {
      page = await api(`/rules/${selected}/executions${qs({ limit: 10 })}`);
    } catch (err) {
      executions.replaceChildren(h("p", { class: "error", text: `Could not load executions: ${errorText(err)}` }));
      return;
    }
    const rows = page.items.map((x) =>
      h(
        "tr",
        { dataset: { status: x.status } },
        [dateTime(x.createdAt), x.status, x.reason ?? "", x.rendered ?? "", x.error ?? "", x.durationMs ?? ""].map((c) => h("td", { text: String(c) })),
      ),
    );
    executions.replaceChildren(
      h(
        "table",
        { class: "grid executions-table" },
        h("caption", { text: `Last executions of “${rule?.name ?? selected}” (refreshes by itself)` }),
        h("thead", {}, h("tr", {}, ["when", "status", "reason", "rendered", "error", "ms"].map((x) => h("th", { text: x })))),
        h("tbody", {}, rows.length ? rows : h("tr", { class: "none" }, h("td", { colspan: 6, class: "muted", text: "none yet" }))),
      ),
    );
  };

  const showExecutions = (id) => {
    selected = id;
    for (const tr of body.children) tr.classList.toggle("selected", Number(tr.dataset.rule) === id);
    loadExecutions();
  };

  const toggle = async (rule, box) => {
    box.disabled = true;
    const { id, createdBy, createdAt, updatedAt, ...definition } = rule;
    try {
      const saved = await api(`/rules/${id}`, { method: "PUT", body: { ...definition, enabled: box.checked } });
      Object.assign(rule, saved);
      toast(`${rule.name}: ${saved.enabled ? "enabled" : "disabled"}`);
    } catch (err) {
      box.checked = !box.checked;
      toast(`Not changed: ${errorText(err)}`);
    }
    box.disabled = false;
  };

  // Delete asks twice: the first click arms the button for a few seconds.
  const remove = async (rule, button) => {
    if (button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      button.textContent = "Really delete?";
      setTimeout(() => {
        button.dataset.armed = "";
        button.textContent = "Delete";
      }, DELETE_ARM_MS);
      return;
    }
    button.disabled = true;
    try {
      await api(`/rules/${rule.id}`, { method: "DELETE" });
    } catch (err) {
      button.disabled = false;
      toast(`Not deleted: ${errorText(err)}`);
      return;
    }
    toast(`${rule.name}: deleted`);
    if (selected === rule.id) {
      selected = null;
      executions.replaceChildren();
    }
    await load();
  };

  const load = async () => {
    try {
      rules = await api("/rules");
    } catch (err) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 8, class: "error", text: `Could not load: ${errorText(err)}` })));
      return;
    }
    body.replaceChildren(
      ...(rules.length
        ? rules.map((r) => {
            const enabled = canEdit
              ? h("input", { type: "checkbox", class: "enabled-toggle", checked: r.enabled, "aria-label": `Enable ${r.name}` })
              : h("span", { text: r.enabled ? "on" : "off" });
            if (canEdit) enabled.addEventListener("change", () => toggle(r, enabled));
            return h(
              "tr",
              { dataset: { rule: String(r.id) }, class: r.id === selected ? "selected" : undefined },
              h("td", { text: r.name }),
              h("td", { text: r.scope }),
              h("td", { text: r.eventType }),
              h("td", { text: r.action?.type ?? "?" }),
              h("td", {}, enabled),
              h("td", { text: String(r.priority) }),
              h("td", { text: `${r.cooldownS}s / ${r.userCooldownS}s per user` }),
              h(
                "td",
                { class: "rule-buttons" },
                h("button", { type: "button", class: "show-executions", text: "Executions", onclick: () => showExecutions(r.id) }),
                canEdit ? h("button", { type: "button", class: "edit-rule", text: "Edit", onclick: () => editor?.edit(r) }) : null,
                canEdit
                  ? h("button", { type: "button", class: "delete-rule danger", text: "Delete", onclick: (e) => remove(r, e.currentTarget) })
                  : null,
              ),
            );
          })
        : [h("tr", {}, h("td", { colspan: 8, class: "muted", text: "No rules yet." }))]),
    );
  };

  const list = h(
    "table",
    { class: "grid rules" },
    h("thead", {}, h("tr", {}, ["name", "scope", "event", "action", "enabled", "priority", "cooldown", ""].map((x) => h("th", { text: x })))),
    body,
  );
  const listBox = h("div", { class: "rules-list" }, h("h1", { text: "Rules" }), list, executions);
  if (canEdit) {
    editor = ruleEditor(app, {
      onSaved: async (rule) => {
        await load();
        showExecutions(rule.id);
      },
    });
    root.replaceChildren(h("div", { class: "rules-page" }, listBox, editor.el));
  } else {
    root.replaceChildren(h("div", { class: "rules-page read-only" }, listBox));
  }
  load();
  const timer = setInterval(loadExecutions, EXECUTIONS_POLL_MS);
  timers.add(timer);
  return {
    destroy() {
      for (const t of timers) clearInterval(t);
      editor?.destroy();
    },
  };
}

// -- the editor (STREAMER) -----------------------------------------------------------------------
function ruleEditor(app, { onSaved }) {
  let help = { placeholders: [], fields: {} };
  let editing = null; // rule id, or null for a new rule
  let group = newGroup();
  let rawOnly = false; // the raw JSON is not something the builder can show

  const scopes = app.account.scopes.includes("*") ? ["*", ...(app.stream ? [app.stream] : [])] : [...app.account.scopes];
  const name = h("input", { name: "name", required: true, maxlength: 128, "aria-label": "Name" });
  const scope = select("scope", scopes, app.stream && scopes.includes(app.stream) ? app.stream : scopes[0], "Scope");
  const eventType = select("eventType", ["GIFT"], "GIFT", "Event type");
  const priority = h("input", { name: "priority", type: "number", min: -1000, max: 1000, value: "0", "aria-label": "Priority" });
  const enabled = h("input", { name: "enabled", type: "checkbox", checked: true });
  const builder = h("div", { class: "builder", id: "condition-builder" });
  const raw = h("textarea", { name: "condition", id: "rule-condition", rows: 4, spellcheck: "false", "aria-label": "Condition (JSON Logic)" });
  const rawNote = h("p", { class: "muted raw-note" });
  const actionType = select("actionType", ACTION_TYPES, "log", "Action type");
  const template = h("textarea", { name: "template", id: "rule-template", rows: 3, maxlength: 8192, "aria-label": "Template" });
  const op = select("op", ["mute", "kick"], "mute", "Moderation");
  const duration = select("durationS", MUTE_DURATIONS.map((d) => ({ value: String(d), label: d === -1 ? "until unmuted" : `${d}s` })), "60", "Mute duration");
  const url = h("input", { name: "url", type: "url", maxlength: 2048, placeholder: "https://…", "aria-label": "Webhook URL" });
  const placeholders = h("ul", { class: "placeholders", id: "placeholders" });
  const cooldown = h("input", { name: "cooldownS", type: "number", min: 0, value: "0", "aria-label": "Cooldown (s)" });
  const userCooldown = h("input", { name: "userCooldownS", type: "number", min: 0, value: "0", "aria-label": "Per-user cooldown (s)" });
  const skipReplay = h("input", { name: "skipReplay", type: "checkbox", checked: true });
  const streakEndOnly = h("input", { name: "streakEndOnly", type: "checkbox", checked: true });
  const errors = h("div", { class: "form-errors error", id: "rule-errors", role: "alert" });
  const title = h("h2", { text: "New rule" });
  const testEvent = select("testEvent", [], undefined, "Test against");
  const testResults = h("ul", { class: "test-results", id: "rule-test-results" });

  const templateField = field("Template", template, "template");
  const opField = field("Moderation", op);
  const durationField = field("Mute for", duration);
  const urlField = field("Webhook URL", url);

  // -- condition builder
  const paths = () => help.fields[eventType.value] ?? [];

  const writeRaw = () => {
    raw.value = JSON.stringify(toLogic(group), null, 0);
  };

  const changed = () => {
    writeRaw();
    paintBuilder();
  };

  const condRow = (parent, cond) => {
    const options = paths().includes(cond.field) || !cond.field ? paths() : [cond.field, ...paths()];
    const f = select("field", options, cond.field || options[0], "Field");
    cond.field = f.value;
    const o = select("operator", OPERATORS, cond.operator, "Operator");
    const v = h("input", { name: "value", value: cond.value, placeholder: cond.operator === "in" ? "a, b, c" : "value", "aria-label": "Value" });
    f.addEventListener("change", () => {
      cond.field = f.value;
      writeRaw();
    });
    o.addEventListener("change", () => {
      cond.operator = o.value;
      changed();
    });
    v.addEventListener("input", () => {
      cond.value = v.value;
      writeRaw();
    });
    const remove = h("button", { type: "button", class: "ghost remove", text: "✕", "aria-label": "Remove condition" });
    remove.addEventListener("click", () => {
      parent.items.splice(parent.items.indexOf(cond), 1);
      changed();
    });
    return h("div", { class: "cond-row" }, f, o, v, remove);
  };

  const groupBox = (g, parent) => {
    const combiner = select("combiner", [{ value: "and", label: "all of (and)" }, { value: "or", label: "any of (or)" }], g.op, "Combine with");
    combiner.addEventListener("change", () => {
      g.op = combiner.value;
      writeRaw();
    });
    const add = h("button", { type: "button", class: "add-condition", text: "+ condition" });
    add.addEventListener("click", () => {
      g.items.push({ kind: "cond", field: paths()[0] ?? "", operator: "==", value: "" });
      changed();
    });
    const addGroup = parent ? null : h("button", { type: "button", class: "add-group", text: "+ group" });
    addGroup?.addEventListener("click", () => {
      g.items.push({ ...newGroup(g.op === "and" ? "or" : "and"), items: [] });
      changed();
    });
    const removeGroup = parent ? h("button", { type: "button", class: "ghost remove", text: "✕ group" }) : null;
    removeGroup?.addEventListener("click", () => {
      parent.items.splice(parent.items.indexOf(g), 1);
      changed();
    });
    return h(
      "div",
      { class: parent ? "cond-group nested" : "cond-group" },
      h("div", { class: "group-head" }, combiner, add, addGroup, removeGroup),
      g.items.map((x) => (x.kind === "group" ? groupBox(x, g) : condRow(g, x))),
      g.items.length ? null : h("p", { class: "muted", text: parent ? "empty group" : "No conditions: every event of the type matches." }),
    );
  };

  const paintBuilder = () => {
    builder.replaceChildren(rawOnly ? h("p", { class: "muted", text: "The builder cannot show this condition: the raw JSON below is used." }) : groupBox(group, null));
  };

  raw.addEventListener("input", () => {
    let parsed;
    try {
      parsed = JSON.parse(raw.value);
    } catch {
      rawNote.textContent = "Not valid JSON yet.";
      return;
    }
    const g = fromLogic(parsed);
    rawNote.textContent = "";
    rawOnly = g === null;
    if (g) group = g;
    paintBuilder();
  });

  // -- action fields
  const paintAction = () => {
    const type = actionType.value;
    templateField.hidden = type === "moderate";
    opField.hidden = type !== "moderate";
    durationField.hidden = type !== "moderate" || op.value !== "mute";
    urlField.hidden = type !== "webhook";
  };
  actionType.addEventListener("change", paintAction);
  op.addEventListener("change", paintAction);

  const insertPlaceholder = (token) => {
    const at = template.selectionStart ?? template.value.length;
    template.value = `${template.value.slice(0, at)}{${token}}${template.value.slice(template.selectionEnd ?? at)}`;
    template.focus();
  };

  // -- test events: the sample of the type, or recent stored ones
  const loadTestEvents = async () => {
    const type = eventType.value;
    const options = [{ value: `sample:${type}`, label: `sample ${type} event` }];
    if (app.stream) {
      try {
        const page = await api(`/streams/@${app.stream}/history${qs({ types: type, order: "desc", limit: RECENT_EVENTS })}`);
        for (const ev of page.items) options.push({ value: `event:${ev.eventId}`, label: eventLabel(ev) });
      } catch {
        // the sample is enough
      }
    }
    if (type !== eventType.value) return; // changed meanwhile
    const keep = testEvent.value;
    testEvent.replaceChildren(...options.map((o) => h("option", { value: o.value, text: o.label })));
    if (options.some((o) => o.value === keep)) testEvent.value = keep;
  };
  const refreshEvents = h("button", { type: "button", class: "ghost refresh-events", text: "↻", title: "Reload recent events", onclick: loadTestEvents });

  eventType.addEventListener("change", () => {
    if (eventType.value === "GIFT") streakEndOnly.checked = true;
    paintBuilder();
    loadTestEvents();
  });

  // -- the rule from the form
  const definition = () => {
    const type = actionType.value;
    let action;
    if (type === "moderate") action = { type, op: op.value, ...(op.value === "mute" ? { durationS: Number(duration.value) } : {}) };
    else if (type === "webhook") action = { type, url: url.value, ...(template.value ? { template: template.value } : {}) };
    else if (type === "log" && !template.value) action = { type };
    else action = { type, template: template.value };
    let condition;
    try {
      condition = JSON.parse(raw.value);
    } catch {
      throw new Error("condition: not valid JSON");
    }
    return {
      name: name.value,
      scope: scope.value,
      eventType: eventType.value,
      condition,
      action,
      enabled: enabled.checked,
      priority: Number(priority.value || 0),
      cooldownS: Number(cooldown.value || 0),
      userCooldownS: Number(userCooldown.value || 0),
      skipReplay: skipReplay.checked,
      streakEndOnly: streakEndOnly.checked,
    };
  };

  const showErrors = (err) => {
    const extra = Array.isArray(err.extra) ? err.extra : [];
    errors.replaceChildren(
      h("p", { text: err.message }),
      ...extra.map((x) => h("p", { text: `${x.key ?? ""}${x.key ? ": " : ""}${x.message ?? JSON.stringify(x)}` })),
    );
  };

  const test = async () => {
    errors.replaceChildren();
    const [kind, value] = testEvent.value.split(":");
    let res;
    try {
      const rule = definition();
      res = await api("/rules/test", { method: "POST", body: { rule, ...(kind === "event" ? { eventId: value } : { eventType: value }) } });
    } catch (err) {
      showErrors(err);
      return;
    }
    const label = testEvent.selectedOptions[0]?.textContent ?? testEvent.value;
    testResults.prepend(
      h(
        "li",
        { class: res.matched ? "match" : "no-match", dataset: { matched: String(res.matched) } },
        h("strong", { class: "verdict", text: res.matched ? "match" : "no match" }),
        h("span", { class: "against", text: ` · ${label}` }),
        res.rendered !== null ? h("p", { class: "rendered", text: res.rendered }) : null,
        res.reason ? h("p", { class: "muted reason", text: res.reason }) : null,
      ),
    );
    while (testResults.children.length > 5) testResults.lastElementChild.remove();
  };

  const save = async (e) => {
    e.preventDefault();
    errors.replaceChildren();
    try {
      const rule = definition();
      const saved = editing === null ? await api("/rules", { method: "POST", body: rule }) : await api(`/rules/${editing}`, { method: "PUT", body: rule });
      toast(`Rule “${saved.name}” saved`);
      editing = saved.id;
      title.textContent = `Edit rule ${saved.id}`;
      onSaved(saved);
    } catch (err) {
      showErrors(err);
    }
  };

  const reset = (rule = null) => {
    editing = rule?.id ?? null;
    title.textContent = rule ? `Edit rule ${rule.id}` : "New rule";
    name.value = rule?.name ?? "";
    if (rule && ![...scope.options].some((o) => o.value === rule.scope)) scope.append(h("option", { value: rule.scope, text: rule.scope }));
    scope.value = rule?.scope ?? scope.value;
    eventType.value = rule?.eventType ?? eventType.value;
    priority.value = String(rule?.priority ?? 0);
    enabled.checked = rule?.enabled ?? true;
    const condition = rule ? rule.condition : true;
    raw.value = JSON.stringify(condition);
    const g = fromLogic(condition);
    rawOnly = g === null;
    group = g ?? newGroup();
    const action = rule?.action ?? { type: "log" };
    actionType.value = action.type;
    template.value = action.template ?? "";
    op.value = action.op ?? "mute";
    duration.value = String(action.durationS ?? 60);
    url.value = action.url ?? "";
    cooldown.value = String(rule?.cooldownS ?? 0);
    userCooldown.value = String(rule?.userCooldownS ?? 0);
    skipReplay.checked = rule?.skipReplay ?? true;
    streakEndOnly.checked = rule?.streakEndOnly ?? eventType.value === "GIFT";
    errors.replaceChildren();
    paintAction();
    paintBuilder();
    loadTestEvents();
  };

  const form = h(
    "form",
    { class: "rule-editor", id: "rule-editor", novalidate: true },
    h("div", { class: "editor-head" }, title, h("button", { type: "button", class: "ghost new-rule", text: "New", onclick: () => reset() })),
    h("div", { class: "form-grid" }, field("Name", name), field("Scope", scope), field("Event type", eventType), field("Priority", priority), field("Enabled", enabled, "check")),
    h("h3", { text: "Condition" }),
    builder,
    field("JSON Logic (editable)", raw, "raw"),
    rawNote,
    h("h3", { text: "Action" }),
    h("div", { class: "form-grid" }, field("Type", actionType), opField, durationField, urlField),
    templateField,
    h("details", { class: "placeholder-help", open: true }, h("summary", { text: "Placeholders (click to insert)" }), placeholders),
    h("h3", { text: "Limits" }),
    h(
      "div",
      { class: "form-grid" },
      field("Cooldown (s)", cooldown),
      field("Per-user cooldown (s)", userCooldown),
      field("Skip replays", skipReplay, "check"),
      field("Gift streak end only", streakEndOnly, "check"),
    ),
    errors,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "save-rule", text: "Save" })),
    h("h3", { text: "Test" }),
    h("div", { class: "test-bar" }, testEvent, refreshEvents, h("button", { type: "button", class: "test-rule", text: "Test", onclick: test })),
    testResults,
  );
  form.addEventListener("submit", save);

  api("/rules/placeholders")
    .then((res) => {
      help = res;
      const types = Object.keys(res.fields);
      const current = eventType.value;
      eventType.replaceChildren(...types.map((t) => h("option", { value: t, text: t })));
      eventType.value = types.includes(current) ? current : types[0];
      placeholders.replaceChildren(
        ...res.placeholders.map((p) =>
          h("li", {}, h("button", { type: "button", class: "ghost placeholder", text: `{${p.name}}`, onclick: () => insertPlaceholder(p.name) }), h("span", { class: "muted", text: ` ${p.description}` })),
        ),
      );
      paintBuilder();
      loadTestEvents();
    })
    .catch((err) => showErrors(err));

  reset();
  return { el: form, edit: reset, destroy() {} };
}

function eventLabel(ev) {
  const who = ev.user?.uniqueId ? `@${ev.user.uniqueId}` : "";
  const p = ev.payload ?? {};
  let what = "";
  if (ev.eventType === "GIFT") what = `${p.giftName ?? "gift"} ×${p.giftCount ?? 1} (${p.coins ?? 0} coins)`;
  else if (p.message) what = String(p.message).slice(0, 40);
  return `${dateTime(ev.timestamp)} · ${who} ${what}`.trim();
}
