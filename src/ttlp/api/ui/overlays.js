// Overlays (STREAMER): the links OBS opens (/overlay/{kind}?token=…), one token per scene or
// PC, each revocable; per token and kind the URL to copy, the options (saved to the server: the
// open overlays follow at once), a live preview (the same page in an iframe, replays included)
// and a skip button; the alert sounds. The plain logic is in overlaylogic.js.

import { api, HttpError } from "./api.js";
import { bind, h, toast } from "./dom.js";
import { dateTime, errorLines } from "./format.js";
import { lifetime } from "./lifetime.js";
import { streamHandles } from "./nav.js";
import {
  draftBody,
  FIELDS,
  getPath,
  isDirty,
  KIND_LABELS,
  KINDS,
  latestLiveSession,
  newDraft,
  overlayUrl,
  setPath,
  sizeText,
  soundsOf,
  sortTokens,
  toggleKind,
  tokenFor,
  typedNumber,
} from "./overlaylogic.js";

const ARM_MS = 4000;
const SOUND_ACCEPT = "audio/mpeg,audio/ogg,audio/wav,audio/x-wav,audio/webm,.mp3,.ogg,.oga,.wav,.webm";

/** POST a multipart form (a sound upload); the API's errors as ``HttpError``. */
async function postForm(path, form) {
  const res = await fetch(path, { method: "POST", credentials: "same-origin", headers: { accept: "application/json" }, body: form });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // no JSON body
  }
  if (!res.ok) throw new HttpError(res.status, String(body?.detail || res.statusText), body?.extra ?? null);
  return body;
}

// -- token list ----------------------------------------------------------------------------------
function renderCreate(s, act) {
  return h(
    "section",
    { class: "card overlay-create" },
    h("h2", { text: "New overlay link" }),
    h("p", { class: "muted", text: "One link per OBS scene or PC: each can be revoked on its own. Anyone with the link sees that streamer's overlays, nothing else." }),
    h(
      "form",
      { class: "form-grid", id: "overlay-create", onsubmit: act.create },
      h("label", { class: "field grow" }, "Name", h("input", { name: "name", required: true, maxlength: 100, placeholder: "OBS main scene", autocomplete: "off", value: s.form.name, oninput: (e) => act.form("name", e.target.value) })),
      h(
        "label",
        { class: "field" },
        "Streamer",
        h("input", { name: "streamer", required: true, list: "overlay-streamers", placeholder: "luna.beats", autocomplete: "off", value: s.form.streamer, oninput: (e) => act.form("streamer", e.target.value) }),
      ),
      h("datalist", { id: "overlay-streamers" }, s.handles.map((x) => h("option", { value: x }))),
      h("button", { type: "submit", class: "primary", disabled: s.busy.has("create"), text: "Create link" }),
    ),
    h("div", { class: "form-errors", role: "alert" }, s.createError.map((line) => h("p", { class: "error", text: line }))),
  );
}

function renderTokenRow(t, s, act) {
  const revoked = Boolean(t.revokedAt);
  const armed = s.armed.has(`token:${t.id}`);
  return h(
    "tr",
    { key: t.id, dataset: { token: String(t.id) }, class: [revoked ? "revoked" : "", s.selected === t.id ? "selected" : ""].join(" ").trim() || undefined },
    h("td", { dataset: { label: "name" } }, h("strong", { text: t.name })),
    h("td", { dataset: { label: "streamer" }, text: `@${t.streamer}` }),
    h("td", { dataset: { label: "created" }, text: dateTime(t.createdAt) }),
    h("td", { dataset: { label: "last used" }, text: t.lastUsedAt ? dateTime(t.lastUsedAt) : "never" }),
    h("td", { dataset: { label: "status" }, class: "status", text: revoked ? `revoked ${dateTime(t.revokedAt)}` : "active" }),
    h(
      "td",
      { class: "row-actions" },
      revoked ? null : h("button", { type: "button", class: "edit", "aria-pressed": String(s.selected === t.id), text: s.selected === t.id ? "Editing" : "Edit", onclick: () => act.select(t.id) }),
      revoked
        ? null
        : h("button", { type: "button", class: "revoke danger", dataset: armed ? { armed: "1" } : undefined, text: armed ? "Really revoke?" : "Revoke", onclick: () => act.revoke(t) }),
    ),
  );
}

function renderTokens(s, act) {
  const tokens = sortTokens(s.tokens);
  return h(
    "section",
    { class: "card" },
    h("h2", { text: "Overlay links" }),
    s.error ? h("p", { class: "error", text: `Could not load: ${s.error}` }) : null,
    tokens.length
      ? h(
          "table",
          { class: "grid overlay-tokens stacked" },
          h("thead", {}, h("tr", {}, ["name", "streamer", "created", "last used", "status", ""].map((x) => h("th", { text: x })))),
          h("tbody", {}, tokens.map((t) => renderTokenRow(t, s, act))),
        )
      : h("p", { class: "muted none", text: s.tokens ? "No overlay links yet: create one above." : "" }),
  );
}

// -- the editor of one token ---------------------------------------------------------------------
function renderField(f, s, act, token) {
  const opts = s.draft.options;
  const value = getPath(opts, f.path);
  const id = `opt-${f.path.replace(/\./g, "-")}`;
  const hint = f.hint ? h("small", { class: "hint", text: f.hint }) : null;
  switch (f.type) {
    case "check":
      return h("label", { class: "field check" }, f.label, h("input", { type: "checkbox", id, name: f.path, checked: Boolean(value), onchange: (e) => act.set(f.path, e.target.checked) }));
    case "number":
      return h(
        "label",
        { class: "field" },
        f.label,
        h("input", { type: "number", id, name: f.path, min: f.min, max: f.max, step: f.step, inputmode: "decimal", value: value ?? "", oninput: (e) => act.set(f.path, typedNumber(e.target.value)) }),
        hint,
      );
    case "select":
      return h("label", { class: "field" }, f.label, h("select", { id, name: f.path, value, onchange: (e) => act.set(f.path, e.target.value) }, f.choices.map(([v, label]) => h("option", { value: v, text: label }))));
    case "text":
      return h("label", { class: "field grow" }, f.label, h("input", { id, name: f.path, list: f.list, autocomplete: "off", value: value ?? "", oninput: (e) => act.set(f.path, e.target.value) }), hint);
    case "key":
      return h(
        "label",
        { class: "field" },
        f.label,
        h("input", {
          id,
          name: f.path,
          class: "key-capture",
          readonly: true,
          value: value ?? "",
          onkeydown: (e) => {
            if (e.key === "Tab") return;
            e.preventDefault();
            act.set(f.path, e.key);
          },
        }),
        hint,
      );
    case "sound": {
      const mine = soundsOf(s.sounds, token.streamer);
      return h(
        "label",
        { class: "field" },
        f.label,
        h(
          "select",
          { id, name: f.path, value: value === null || value === undefined ? "" : String(value), onchange: (e) => act.set(f.path, e.target.value ? Number(e.target.value) : null) },
          h("option", { value: "", text: "no sound" }),
          mine.map((x) => h("option", { value: String(x.id), text: x.name })),
        ),
      );
    }
    case "kinds":
      return h(
        "fieldset",
        { class: "kinds" },
        h("legend", { text: f.label }),
        f.choices.map((k) =>
          h("label", { class: "field check" }, k.toLowerCase(), h("input", { type: "checkbox", name: `${f.path}.${k}`, checked: (value ?? []).includes(k), onchange: (e) => act.set(f.path, toggleKind(value ?? [], k, e.target.checked)) })),
        ),
      );
    default:
      return null;
  }
}

function renderOptions(s, act, token) {
  return h(
    "form",
    { class: "overlay-options", id: "overlay-options", onsubmit: act.save },
    FIELDS[s.kind].map((group) => h("fieldset", { class: "form-grid" }, h("legend", { text: group.legend }), group.fields.map((f) => renderField(f, s, act, token)))),
    h(
      "fieldset",
      {},
      h("legend", { text: "Banned words (every overlay of this link)" }),
      h(
        "label",
        { class: "field grow" },
        "One per line or comma-separated: masked in chat and the ticker, never spoken",
        h("textarea", { name: "bannedWords", rows: 3, value: s.draft.bannedText, oninput: (e) => act.banned(e.target.value) }),
      ),
    ),
    h("datalist", { id: "overlay-voices" }, s.voices.map((v) => h("option", { value: v }))),
    h("div", { class: "form-errors", role: "alert" }, s.optionsError.map((line) => h("p", { class: "error", text: line }))),
    h(
      "div",
      { class: "editor-buttons" },
      h("button", { type: "submit", class: "primary save-options", disabled: s.busy.has("save") || !s.dirty, text: s.dirty ? "Save options" : "Saved" }),
      h("button", { type: "button", class: "reset-options", disabled: !s.dirty, text: "Undo changes", onclick: act.reset }),
    ),
  );
}

function renderPreview(s, act, token) {
  const src = overlayUrl("", s.kind, token.token, { preview: true });
  return h(
    "div",
    { class: "overlay-preview" },
    h("div", { class: `preview-box kind-${s.kind}` }, h("iframe", { key: `preview:${token.id}:${s.kind}:${s.reloads}`, id: "overlay-preview", title: `${KIND_LABELS[s.kind]} preview`, src })),
    h(
      "div",
      { class: "preview-tools" },
      s.kind === "alerts" ? h("button", { type: "button", class: "skip", title: "Skip the alert on screen and stop speaking (every open alerts overlay of this link)", text: "Skip alert", onclick: act.skip }) : null,
      h("button", { type: "button", class: "replay-preview", disabled: s.busy.has("replay"), text: "Replay last live session", onclick: () => act.replay(token) }),
      h("button", { type: "button", class: "ghost reload-preview", text: "Reload", onclick: act.reloadPreview }),
    ),
    h("p", { class: "muted small", text: "The preview shows live events and replays (OBS shows live events only). Sound needs a click in the page first; speech uses this browser's voices." }),
  );
}

function renderEditor(s, act) {
  const token = (s.tokens ?? []).find((t) => t.id === s.selected && !t.revokedAt);
  if (!token || !s.draft) return null;
  const url = overlayUrl(location.origin, s.kind, token.token);
  return h(
    "section",
    { class: "card overlay-editor", id: "overlay-editor" },
    h("h2", { text: `${token.name} · @${token.streamer}` }),
    h(
      "div",
      { class: "kind-tabs", role: "tablist" },
      KINDS.map((k) => h("button", { type: "button", role: "tab", class: "kind-tab", dataset: { kind: k }, "aria-selected": String(s.kind === k), text: KIND_LABELS[k], onclick: () => act.kind(k) })),
    ),
    h(
      "div",
      { class: "link-row overlay-url" },
      h("input", { class: "overlay-link", readonly: true, "aria-label": `${KIND_LABELS[s.kind]} overlay URL`, value: url, onfocus: (e) => e.target.select() }),
      h("button", { type: "button", class: "copy-link", text: "Copy", onclick: () => act.copy(url) }),
    ),
    h("p", { class: "muted small", text: "In OBS: Sources → + → Browser, paste the URL, set the size (e.g. 800×600; the ticker and the goal are wide and low). The background is transparent." }),
    h("div", { class: "overlay-workbench" }, renderOptions(s, act, token), renderPreview(s, act, token)),
  );
}

function renderSounds(s, act) {
  const handles = s.handles;
  return h(
    "section",
    { class: "card overlay-sounds" },
    h("h2", { text: "Alert sounds" }),
    h("p", { class: "muted", text: "MP3, Ogg, WAV or WebM audio, at most 1 MiB. Pick them per alert kind in a link's Alerts options." }),
    h(
      "form",
      { class: "form-grid", id: "sound-upload", onsubmit: act.upload },
      h("label", { class: "field grow" }, "Name", h("input", { name: "soundName", required: true, maxlength: 100, autocomplete: "off", value: s.upload.name, oninput: (e) => act.uploadField("name", e.target.value) })),
      h("label", { class: "field" }, "Streamer", h("input", { name: "soundStreamer", required: true, list: "overlay-streamers", autocomplete: "off", value: s.upload.streamer, oninput: (e) => act.uploadField("streamer", e.target.value) })),
      h("label", { class: "field grow" }, "File", s.fileInput),
      h("button", { type: "submit", class: "primary", disabled: s.busy.has("upload"), text: "Upload" }),
    ),
    h("div", { class: "form-errors", role: "alert" }, s.uploadError.map((line) => h("p", { class: "error", text: line }))),
    s.sounds?.length
      ? h(
          "table",
          { class: "grid overlay-sound-list stacked" },
          h("thead", {}, h("tr", {}, ["name", "streamer", "type", "size", "added", ""].map((x) => h("th", { text: x })))),
          h(
            "tbody",
            {},
            s.sounds.map((x) => {
              const armed = s.armed.has(`sound:${x.id}`);
              const player = tokenFor(s.tokens, x.streamer);
              return h(
                "tr",
                { key: x.id, dataset: { sound: String(x.id) } },
                h("td", { dataset: { label: "name" } }, h("strong", { text: x.name })),
                h("td", { dataset: { label: "streamer" }, text: `@${x.streamer}` }),
                h("td", { dataset: { label: "type" }, text: x.contentType }),
                h("td", { dataset: { label: "size" }, text: sizeText(x.size) }),
                h("td", { dataset: { label: "added" }, text: dateTime(x.createdAt) }),
                h(
                  "td",
                  { class: "row-actions" },
                  player ? h("button", { type: "button", class: "play", text: "Play", onclick: () => act.play(x, player) }) : null,
                  h("button", { type: "button", class: "delete danger", dataset: armed ? { armed: "1" } : undefined, text: armed ? "Really delete?" : "Delete", onclick: () => act.removeSound(x) }),
                ),
              );
            }),
          ),
        )
      : h("p", { class: "muted none", text: s.sounds ? (handles.length ? "No sounds yet." : "") : "" }),
  );
}

function render(s, act) {
  return [h("h1", { text: "Overlays" }), renderCreate(s, act), renderTokens(s, act), renderEditor(s, act), renderSounds(s, act)];
}

export function mountOverlays(root, ctx) {
  const { app } = ctx;
  const life = lifetime();
  const handles = streamHandles(app.account.scopes, app.stream ? [{ uniqueId: app.stream }] : []);
  const state = {
    handles,
    tokens: null,
    sounds: null,
    error: "",
    selected: null, // token id being edited
    kind: "alerts",
    saved: null, // the selected token's options as the server has them
    draft: null, // … and as the form holds them
    dirty: false,
    optionsError: [],
    form: { name: "", streamer: app.stream ?? handles[0] ?? "" },
    createError: [],
    upload: { name: "", streamer: app.stream ?? handles[0] ?? "", file: null },
    uploadError: [],
    armed: new Set(), // "token:<id>" / "sound:<id>" whose button asks for the second click
    busy: new Set(),
    voices: [],
    reloads: 0,
    // The file input is made once and kept as it is: a re-render would clear what was picked.
    fileInput: h("input", { type: "file", name: "soundFile", required: true, accept: SOUND_ACCEPT, onchange: (e) => act.uploadField("file", e.target.files?.[0] ?? null) }),
  };
  let audio = null;

  const arm = (key) => {
    update((s) => s.armed.add(key));
    life.later(() => update((s) => s.armed.delete(key)), ARM_MS);
  };

  const load = async () => {
    try {
      const [tokens, sounds] = await Promise.all([api("/overlays/tokens"), api("/overlays/sounds")]);
      if (!life.alive) return;
      update((s) => Object.assign(s, { tokens, sounds, error: "" }));
      const current = tokens.find((t) => t.id === state.selected && !t.revokedAt);
      if (!current) {
        const first = sortTokens(tokens).find((t) => !t.revokedAt);
        if (first) select(first.id);
        else update((s) => Object.assign(s, { selected: null, saved: null, draft: null }));
      }
    } catch (err) {
      if (life.alive) update((s) => (s.error = err.message));
    }
  };

  const select = async (id) => {
    update((s) => Object.assign(s, { selected: id, saved: null, draft: null, optionsError: [], dirty: false }));
    try {
      const saved = await api(`/overlays/tokens/${id}/options`);
      if (life.alive && state.selected === id) update((s) => Object.assign(s, { saved, draft: newDraft(saved), dirty: false }));
    } catch (err) {
      if (life.alive) update((s) => (s.optionsError = errorLines(err)));
    }
  };

  const changeDraft = (change) =>
    update((s) => {
      change(s.draft);
      s.dirty = isDirty(s.draft, s.saved);
    });

  const act = {
    form: (key, value) => update((s) => (s.form[key] = value)),
    create: async (e) => {
      e.preventDefault();
      update((s) => {
        s.createError = [];
        s.busy.add("create");
      });
      try {
        const made = await api("/overlays/tokens", { method: "POST", body: { name: state.form.name.trim(), streamer: state.form.streamer.trim().replace(/^@/, "") } });
        update((s) => (s.form = { ...s.form, name: "" }));
        toast(`Overlay link “${made.name}” created`);
        await load();
        select(made.id);
      } catch (err) {
        update((s) => (s.createError = errorLines(err)));
      } finally {
        update((s) => s.busy.delete("create"));
      }
    },
    select: (id) => select(id),
    revoke: async (t) => {
      const key = `token:${t.id}`;
      if (!state.armed.has(key)) return arm(key);
      update((s) => s.armed.delete(key));
      try {
        await api(`/overlays/tokens/${t.id}`, { method: "DELETE" });
        toast(`“${t.name}” revoked: its overlays stop within seconds`);
      } catch (err) {
        toast(`${t.name}: ${err.message}`);
      }
      load();
    },
    kind: (k) => update((s) => (s.kind = k)),
    set: (path, value) => changeDraft((d) => (d.options = setPath(d.options, path, value))),
    banned: (text) => changeDraft((d) => (d.bannedText = text)),
    reset: () => update((s) => Object.assign(s, { draft: newDraft(s.saved), dirty: false, optionsError: [] })),
    save: async (e) => {
      e.preventDefault();
      const id = state.selected;
      update((s) => {
        s.optionsError = [];
        s.busy.add("save");
      });
      try {
        const saved = await api(`/overlays/tokens/${id}/options`, { method: "PUT", body: draftBody(state.draft) });
        if (state.selected === id) update((s) => Object.assign(s, { saved, draft: newDraft(saved), dirty: false }));
        toast("Options saved: open overlays follow at once");
      } catch (err) {
        update((s) => (s.optionsError = errorLines(err)));
      } finally {
        update((s) => s.busy.delete("save"));
      }
    },
    copy: async (url) => {
      try {
        await navigator.clipboard.writeText(url);
        toast("URL copied");
      } catch {
        root.querySelector(".overlay-link")?.select(); // no clipboard access: selected for Ctrl+C
        toast("Select and copy the URL");
      }
    },
    skip: async () => {
      try {
        await api(`/overlays/tokens/${state.selected}/skip`, { method: "POST" });
        toast("Skipped");
      } catch (err) {
        toast(err.message);
      }
    },
    replay: async (token) => {
      update((s) => s.busy.add("replay"));
      try {
        const sessions = await api(`/streams/@${encodeURIComponent(token.streamer)}/sessions?limit=50`);
        const session = latestLiveSession(sessions);
        if (!session) {
          toast(`No live session of @${token.streamer} to replay yet`);
          return;
        }
        await api(`/sessions/${session.id}/replay?speed=1`, { method: "POST" });
        toast("Replaying in real time: the preview shows it");
      } catch (err) {
        toast(err.message);
      } finally {
        update((s) => s.busy.delete("replay"));
      }
    },
    reloadPreview: () => update((s) => (s.reloads += 1)),
    uploadField: (key, value) => update((s) => (s.upload[key] = value)),
    upload: async (e) => {
      e.preventDefault();
      const u = state.upload;
      if (!u.file) return update((s) => (s.uploadError = ["Choose an audio file first."]));
      const form = new FormData();
      form.append("file", u.file);
      form.append("name", u.name.trim());
      form.append("streamer", u.streamer.trim().replace(/^@/, ""));
      update((s) => {
        s.uploadError = [];
        s.busy.add("upload");
      });
      try {
        const made = await postForm("/overlays/sounds", form);
        state.fileInput.value = "";
        update((s) => (s.upload = { ...s.upload, name: "", file: null }));
        toast(`Sound “${made.name}” uploaded`);
        load();
      } catch (err) {
        update((s) => (s.uploadError = err instanceof HttpError && err.status === 401 ? ["Your session ended: reload the page and log in again."] : errorLines(err)));
      } finally {
        update((s) => s.busy.delete("upload"));
      }
    },
    play: (sound, token) => {
      audio?.pause();
      audio = new Audio(`/overlay/sounds/${sound.id}?token=${encodeURIComponent(token.token)}`);
      audio.volume = Number(state.draft?.options.alerts.volume ?? 0.8) || 0.8;
      audio.play().catch(() => toast("This browser did not play it"));
    },
    removeSound: async (x) => {
      const key = `sound:${x.id}`;
      if (!state.armed.has(key)) return arm(key);
      update((s) => s.armed.delete(key));
      try {
        await api(`/overlays/sounds/${x.id}`, { method: "DELETE" });
        toast(`Sound “${x.name}” deleted: alerts that used it have no sound now`);
      } catch (err) {
        toast(err.message);
      }
      await load();
      if (state.selected) select(state.selected); // its options may have named the sound
    },
  };

  const update = bind(root, state, (s) => render(s, act));
  update();
  load();

  // The voices this browser offers, for the voice field's suggestions (OBS may have others).
  const synth = window.speechSynthesis;
  const voices = () => life.alive && update((s) => (s.voices = [...new Set((synth?.getVoices() ?? []).map((v) => v.name))]));
  synth?.addEventListener?.("voiceschanged", voices);
  voices();

  return {
    destroy() {
      life.end();
      audio?.pause();
      synth?.removeEventListener?.("voiceschanged", voices);
    },
  };
}
