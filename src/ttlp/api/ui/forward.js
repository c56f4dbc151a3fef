// Forwarding (STREAMER): the forward targets without curl. The list with each target's counts;
// a form to create or edit one (name, URL, scope, event types, streak end only, enabled); the
// secret shown once after creation, with a copy button; pause and resume; delete (asks twice);
// "Send test event" (one signed POST now, the receiver's answer shown under the target); and a
// target's deliveries (status filter, attempts, last error, next retry, Redeliver). The page
// reloads the counts and the open deliveries every few seconds. The plain logic is in
// forwardlogic.js; everything a target or a receiver says is shown as text.

import { api, qs } from "./api.js";
import { bind, h, toast } from "./dom.js";
import { dateTime, errorLines } from "./format.js";
import {
  countCells,
  deliveriesQuery,
  EVENT_TYPES,
  formFromTarget,
  mayRedeliver,
  nextRetryText,
  scopeOptions,
  scopeText,
  shortId,
  STATUSES,
  statusText,
  streakText,
  targetBody,
  testResultText,
  testType,
  toggleType,
  typesText,
  withDelivery,
  withPage,
} from "./forwardlogic.js";
import { lifetime } from "./lifetime.js";

const ARM_MS = 4000;
const REFRESH_MS = 5000;

// -- the form ------------------------------------------------------------------------------------
function renderForm(s, act) {
  const f = s.form;
  const editing = f.editing !== null;
  const scopes = scopeOptions(s.account.scopes, s.stream, f.scope);
  return h(
    "section",
    { class: "card forward-form", id: "forward-form" },
    h("h2", { text: editing ? `Edit “${f.name || "target"}”` : "New target" }),
    h("p", { class: "muted", text: "Every matching event is POSTed to the URL as UnifiedEvent JSON, signed with the target's secret (X-TTLP-Signature), retried with back-off until it is taken." }),
    h(
      "form",
      { id: "target-form", onsubmit: act.submit },
      h(
        "div",
        { class: "form-grid" },
        h("label", { class: "field" }, "Name", h("input", { name: "name", required: true, maxlength: 128, autocomplete: "off", placeholder: "my bot", value: f.name, oninput: (e) => act.field("name", e.target.value) })),
        h(
          "label",
          { class: "field grow" },
          "URL",
          h("input", { name: "url", type: "url", required: true, maxlength: 2048, autocomplete: "off", placeholder: "https://hooks.example.com/ttlp", value: f.url, oninput: (e) => act.field("url", e.target.value) }),
        ),
        h(
          "label",
          { class: "field" },
          "Streamer",
          h("select", { name: "scope", required: true, value: f.scope, onchange: (e) => act.field("scope", e.target.value) }, scopes.map((x) => h("option", { value: x, text: scopeText(x) }))),
        ),
      ),
      h(
        "fieldset",
        { class: "event-types" },
        h("legend", { text: "Event types (none checked: every type)" }),
        EVENT_TYPES.map((t) =>
          h("label", { class: "field check" }, t, h("input", { type: "checkbox", name: `type-${t}`, checked: f.eventTypes.includes(t), onchange: (e) => act.type(t, e.target.checked) })),
        ),
      ),
      h(
        "div",
        { class: "form-grid switches" },
        h(
          "label",
          { class: "field check", title: "A gift streak (a combo) is one POST: its last frame, with the streak's total. Off: one POST per frame." },
          "Gift streaks: the end only",
          h("input", { type: "checkbox", name: "streakEndOnly", checked: f.streakEndOnly, onchange: (e) => act.field("streakEndOnly", e.target.checked) }),
        ),
        h("label", { class: "field check" }, "Enabled", h("input", { type: "checkbox", name: "enabled", checked: f.enabled, onchange: (e) => act.field("enabled", e.target.checked) })),
      ),
      h("div", { class: "form-errors", role: "alert" }, s.formError.map((line) => h("p", { class: "error", text: line }))),
      h(
        "div",
        { class: "editor-buttons" },
        h("button", { type: "submit", class: "primary save-target", disabled: s.busy.has("save"), text: editing ? "Save" : "Create target" }),
        editing ? h("button", { type: "button", class: "cancel-edit", text: "Cancel", onclick: act.cancel }) : null,
      ),
    ),
    s.secret
      ? h(
          "div",
          { class: "secret-created", id: "secret-created" },
          h("p", { text: `The secret of “${s.secret.name}”, shown this once: give it to the receiver, which checks X-TTLP-Signature with it. Saving the target again keeps it.` }),
          h(
            "div",
            { class: "link-row" },
            h("input", { class: "target-secret", readonly: true, "aria-label": "Target secret", value: s.secret.secret, onfocus: (e) => e.target.select() }),
            h("button", { type: "button", class: "copy-secret", text: "Copy", onclick: act.copySecret }),
            h("button", { type: "button", class: "ghost hide-secret", text: "Done", onclick: act.hideSecret }),
          ),
        )
      : null,
  );
}

// -- the targets ---------------------------------------------------------------------------------
function renderTest(test) {
  if (!test) return null;
  if (test.busy) return h("p", { class: "test-result muted", text: "Sending a test event…" });
  return h("p", { class: `test-result ${test.ok ? "ok" : "error"}`, role: "status", text: test.text });
}

function renderTargetRow(t, s, act) {
  const c = countCells(t.counts);
  const armed = s.armed.has(`delete:${t.id}`);
  const test = s.tests.get(t.id);
  const open = s.selected === t.id;
  return h(
    "tr",
    { key: t.id, dataset: { target: String(t.id) }, class: [t.enabled ? "" : "paused", open ? "selected" : ""].join(" ").trim() || undefined },
    h("td", { dataset: { label: "target" } }, h("strong", { text: t.name }), h("div", { class: "target-url muted", text: t.url })),
    h("td", { dataset: { label: "streamer" }, text: scopeText(t.scope) }),
    h("td", { dataset: { label: "event types" } }, typesText(t.eventTypes), streakText(t) ? h("div", { class: "muted small", text: streakText(t) }) : null),
    h("td", { dataset: { label: "status" }, class: "status", text: statusText(t) }),
    h("td", { dataset: { label: "delivered" }, class: "num delivered", text: String(c.delivered) }),
    h("td", { dataset: { label: "retried" }, class: "num retried", text: String(c.retried) }),
    h("td", { dataset: { label: "dead" }, class: "num dead", text: String(c.dead) }),
    h("td", { dataset: { label: "pending" }, class: "num pending", text: String(c.pending) }),
    h(
      "td",
      { class: "target-actions" },
      h(
        "div",
        { class: "target-buttons" },
        h("button", { type: "button", class: "edit", text: "Edit", onclick: () => act.edit(t) }),
        h("button", { type: "button", class: t.enabled ? "pause" : "resume", disabled: s.busy.has(`toggle:${t.id}`), text: t.enabled ? "Pause" : "Resume", onclick: () => act.toggle(t) }),
        h("button", { type: "button", class: "test", disabled: Boolean(test?.busy), title: `Send a made-up ${testType(t)} event to the URL now`, text: "Send test event", onclick: () => act.test(t) }),
        h("button", { type: "button", class: "show-deliveries", "aria-pressed": String(open), text: "Deliveries", onclick: () => act.open(t) }),
        h("button", { type: "button", class: "delete danger", dataset: armed ? { armed: "1" } : undefined, text: armed ? "Really delete?" : "Delete", onclick: () => act.remove(t) }),
      ),
      renderTest(test),
    ),
  );
}

function renderTargets(s, act) {
  return h(
    "section",
    { class: "card" },
    h("h2", { text: "Targets" }),
    s.error ? h("p", { class: "error", text: `Could not load: ${s.error}` }) : null,
    s.targets?.length
      ? h(
          "table",
          { class: "grid forward-targets stacked" },
          h("thead", {}, h("tr", {}, ["target", "streamer", "event types", "status", "delivered", "retried", "dead", "pending", ""].map((x) => h("th", { text: x })))),
          h("tbody", {}, s.targets.map((t) => renderTargetRow(t, s, act))),
        )
      : h("p", { class: "muted none", text: s.targets ? "No targets yet: create one above." : "" }),
  );
}

// -- a target's deliveries -----------------------------------------------------------------------
function renderDeliveryRow(d, target, s, act) {
  const busy = s.busy.has(`redeliver:${d.id}`);
  return h(
    "tr",
    { key: d.id, dataset: { delivery: String(d.id), status: d.status } },
    h("td", { dataset: { label: "id" }, class: "num", text: String(d.id) }),
    h("td", { dataset: { label: "event" } }, h("span", { text: d.eventType ?? "?" }), " ", h("code", { title: d.eventId, text: shortId(d.eventId) })),
    h("td", { dataset: { label: "status" }, class: `delivery-status ${d.status}`, text: d.status }),
    h("td", { dataset: { label: "attempts" }, class: "num attempts", text: String(d.attempts) }),
    h("td", { dataset: { label: "last error" }, class: "last-error", text: d.lastError ?? "—" }),
    h("td", { dataset: { label: "next retry" }, class: "next-retry", title: d.nextAttemptAt ?? "", text: nextRetryText(d, !target.enabled, s.now) }),
    h("td", { dataset: { label: "created" }, text: dateTime(d.createdAt) }),
    h("td", { dataset: { label: "updated" }, text: dateTime(d.updatedAt) }),
    h(
      "td",
      { class: "row-actions" },
      mayRedeliver(d) ? h("button", { type: "button", class: "redeliver confirm", disabled: busy, text: "Redeliver", onclick: () => act.redeliver(d) }) : null,
    ),
  );
}

function renderDeliveries(s, act) {
  const target = (s.targets ?? []).find((t) => t.id === s.selected);
  if (!target) return null;
  const d = s.deliveries;
  return h(
    "section",
    { class: "card forward-deliveries", id: "forward-deliveries" },
    h("h2", { text: `Deliveries · ${target.name}` }),
    target.enabled ? null : h("p", { class: "muted paused-note", text: "Paused: pending deliveries are held and events that arrive now are not queued. Resume to send them." }),
    h(
      "div",
      { class: "dlq-tools" },
      h(
        "select",
        { name: "deliveryStatus", "aria-label": "Status", value: d.filter, onchange: (e) => act.filter(e.target.value) },
        h("option", { value: "", text: "every status" }),
        STATUSES.map((x) => h("option", { value: x, text: x })),
      ),
      h("button", { type: "button", class: "refresh-deliveries", text: "Refresh", onclick: () => act.loadDeliveries() }),
      h("button", { type: "button", class: "ghost close-deliveries", text: "Close", onclick: () => act.open(target) }),
    ),
    d.error ? h("p", { class: "error", text: `Could not load: ${d.error}` }) : null,
    d.items?.length
      ? h(
          "table",
          { class: "grid deliveries stacked" },
          h("thead", {}, h("tr", {}, ["id", "event", "status", "attempts", "last error", "next retry", "created", "updated", ""].map((x) => h("th", { text: x })))),
          h("tbody", {}, d.items.map((x) => renderDeliveryRow(x, target, s, act))),
        )
      : h("p", { class: "muted none", text: d.items ? (d.filter ? `No ${d.filter} deliveries.` : "No deliveries yet.") : "Loading…" }),
    h("button", { type: "button", class: "older", text: "Older", hidden: !d.next, onclick: () => act.loadDeliveries(true) }),
  );
}

function render(s, act) {
  return [h("h1", { text: "Forwarding" }), renderForm(s, act), renderTargets(s, act), renderDeliveries(s, act)];
}

export function mountForward(root, ctx) {
  const { app } = ctx;
  const life = lifetime();
  const newForm = () => {
    const scopes = scopeOptions(app.account.scopes, app.stream);
    return formFromTarget(null, { scope: scopes.includes(app.stream) ? app.stream : (scopes[0] ?? "") });
  };
  const state = {
    account: app.account,
    stream: app.stream,
    targets: null,
    error: "",
    form: newForm(),
    formError: [],
    secret: null, // {name, secret}: the one showing of a new target's secret
    armed: new Set(), // "delete:<id>" waiting for its second click
    busy: new Set(),
    tests: new Map(), // target id → {busy} or {ok, text}
    selected: null, // the target whose deliveries are shown
    deliveries: { items: null, next: null, filter: "", error: "", appended: false },
    now: Date.now(),
  };

  const load = async () => {
    try {
      const targets = await api("/forward/targets");
      if (!life.alive) return;
      update((s) => {
        Object.assign(s, { targets, error: "", now: Date.now() });
        if (s.selected !== null && !targets.some((t) => t.id === s.selected)) s.selected = null;
      });
    } catch (err) {
      if (life.alive) update((s) => (s.error = err.message));
    }
  };

  const loadDeliveries = async (append = false) => {
    const id = state.selected;
    if (id === null) return;
    const d = state.deliveries;
    let page;
    try {
      page = await api(`/forward/targets/${id}/deliveries${qs(deliveriesQuery(d.filter, append ? d.next : null))}`);
    } catch (err) {
      if (life.alive && state.selected === id) update((s) => (s.deliveries.error = err.message));
      return;
    }
    if (!life.alive || state.selected !== id) return;
    update((s) => {
      Object.assign(s.deliveries, { items: withPage(s.deliveries.items ?? [], page, append), next: page.nextBefore, error: "", appended: append });
      s.now = Date.now();
    });
  };

  const act = {
    field: (key, value) => update((s) => (s.form[key] = value)),
    type: (type, on) => update((s) => (s.form.eventTypes = toggleType(s.form.eventTypes, type, on))),
    submit: async (e) => {
      e.preventDefault();
      const form = state.form;
      update((s) => {
        s.formError = [];
        s.busy.add("save");
      });
      try {
        const body = targetBody(form);
        if (form.editing === null) {
          const made = await api("/forward/targets", { method: "POST", body });
          update((s) => Object.assign(s, { secret: { name: made.name, secret: made.secret }, form: newForm() }));
          toast(`Target “${made.name}” created: copy its secret now`);
        } else {
          const saved = await api(`/forward/targets/${form.editing}`, { method: "PUT", body });
          update((s) => (s.form = newForm()));
          toast(`Target “${saved.name}” saved`);
        }
        await load();
      } catch (err) {
        if (life.alive) update((s) => (s.formError = errorLines(err)));
      } finally {
        if (life.alive) update((s) => s.busy.delete("save"));
      }
    },
    edit: (t) => {
      update((s) => Object.assign(s, { form: formFromTarget(t), formError: [] }));
      root.querySelector("#forward-form")?.scrollIntoView({ block: "start", behavior: "smooth" });
      root.querySelector("#target-form input[name=name]")?.focus({ preventScroll: true });
    },
    cancel: () => update((s) => Object.assign(s, { form: newForm(), formError: [] })),
    copySecret: async () => {
      try {
        await navigator.clipboard.writeText(state.secret.secret);
        toast("Secret copied");
      } catch {
        root.querySelector(".target-secret")?.select(); // no clipboard access: selected for Ctrl+C
        toast("Select and copy the secret");
      }
    },
    hideSecret: () => update((s) => (s.secret = null)),
    toggle: async (t) => {
      const key = `toggle:${t.id}`;
      update((s) => s.busy.add(key));
      try {
        await api(`/forward/targets/${t.id}/${t.enabled ? "pause" : "resume"}`, { method: "POST" });
        toast(t.enabled ? `“${t.name}” paused: pending deliveries are held` : `“${t.name}” resumed`);
      } catch (err) {
        toast(`${t.name}: ${err.message}`);
      } finally {
        update((s) => s.busy.delete(key));
      }
      await load();
    },
    test: async (t) => {
      update((s) => s.tests.set(t.id, { busy: true }));
      let shown;
      try {
        shown = testResultText(await api(`/forward/targets/${t.id}/test`, { method: "POST", body: { eventType: testType(t) } }));
      } catch (err) {
        shown = { ok: false, text: `Not sent: ${err.message}` };
      }
      if (life.alive) update((s) => s.tests.set(t.id, shown));
    },
    open: (t) => {
      const closing = state.selected === t.id;
      update((s) => Object.assign(s, { selected: closing ? null : t.id, deliveries: { items: null, next: null, filter: s.deliveries.filter, error: "", appended: false } }));
      if (!closing) {
        loadDeliveries();
        life.later(() => root.querySelector("#forward-deliveries")?.scrollIntoView({ block: "nearest", behavior: "smooth" }), 0);
      }
    },
    filter: (value) => {
      update((s) => Object.assign(s.deliveries, { filter: value, items: null, next: null, appended: false }));
      loadDeliveries();
    },
    loadDeliveries: (append = false) => loadDeliveries(append),
    redeliver: async (d) => {
      const key = `redeliver:${d.id}`;
      update((s) => s.busy.add(key));
      try {
        const queued = await api(`/forward/targets/${state.selected}/deliveries/${d.id}/redeliver`, { method: "POST" });
        update((s) => (s.deliveries.items = withDelivery(s.deliveries.items ?? [], queued)));
        toast(`Delivery ${d.id} queued again`);
      } catch (err) {
        toast(`Delivery ${d.id}: ${err.message}`);
      } finally {
        if (life.alive) update((s) => s.busy.delete(key));
      }
      load();
    },
    remove: async (t) => {
      const key = `delete:${t.id}`;
      if (!state.armed.has(key)) {
        update((s) => s.armed.add(key));
        life.later(() => update((s) => s.armed.delete(key)), ARM_MS);
        return;
      }
      update((s) => s.armed.delete(key));
      try {
        await api(`/forward/targets/${t.id}`, { method: "DELETE" });
        toast(`Target “${t.name}” deleted with its queued deliveries`);
        update((s) => {
          if (s.form.editing === t.id) s.form = newForm();
          s.tests.delete(t.id);
        });
      } catch (err) {
        toast(`${t.name}: ${err.message}`);
      }
      await load();
    },
  };

  const update = bind(root, state, (s) => render(s, act));
  update();
  load();
  // Counts and the open deliveries follow what the forward role does (not while older pages of
  // deliveries are shown: the reload would take them away).
  life.every(() => {
    load();
    if (state.selected !== null && !state.deliveries.appended) loadDeliveries();
  }, REFRESH_MS);
  return { destroy: () => life.end() };
}
