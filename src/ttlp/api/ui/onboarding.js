// The pages a link opens before anyone is logged in: the first-run setup (``#/setup/<token>``,
// printed by ``ttlp run`` while no account exists) and an invite (``#/invite/<token>``). Each
// ends logged in: ``done(account, next)`` hands over to the app. The token goes to the API in
// a JSON body, never in a URL the server sees.

import { inviteSummary, passwordProblem, usernameProblem } from "./accountlogic.js";
import { api, HttpError } from "./api.js";
import { bind, h } from "./dom.js";
import { errorLines } from "./format.js";

function passwordFields(s, set) {
  return [
    h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, value: s.password, oninput: (e) => set("password", e.target.value) })),
    h("label", {}, "Repeat the password", h("input", { name: "repeat", type: "password", autocomplete: "new-password", required: true, value: s.repeat, oninput: (e) => set("repeat", e.target.value) })),
    h("p", { class: "muted small", text: "At least 8 characters; a few words make a good one." }),
  ];
}

function errors(s) {
  return h("div", { class: "form-errors", role: "alert" }, s.errors.map((line) => h("p", { class: "error", text: line })));
}

/** A dead link (404/410): what happened and the way on. */
function deadLink(message) {
  return h(
    "div",
    { class: "login onboard", id: "link-dead" },
    h("h1", { text: "ttlp" }),
    h("p", { class: "error", text: message }),
    h("a", { href: "#/", text: "Go to the login page" }),
  );
}

function explain(err) {
  return err instanceof HttpError && err.status === 400 ? errorLines(err) : [err.message];
}

/** The first-run page: the owner picks a name and a password (STREAMER of scope *). */
export function mountSetup(main, token, done) {
  const state = { username: "", password: "", repeat: "", errors: [], busy: false, dead: "" };
  const set = (key, value) => update((s) => (s[key] = value));
  const submit = async (e) => {
    e.preventDefault();
    const problems = [usernameProblem(state.username), passwordProblem(state.password, state.repeat)].filter(Boolean);
    if (problems.length) return update((s) => (s.errors = problems));
    update((s) => Object.assign(s, { errors: [], busy: true }));
    try {
      const res = await api("/auth/setup", { method: "POST", body: { token, username: state.username, password: state.password }, quiet401: true });
      done(res.account, "accounts");
    } catch (err) {
      const gone = err instanceof HttpError && (err.status === 404 || err.status === 410);
      update((s) => Object.assign(s, gone ? { dead: err.message } : { errors: explain(err) }, { busy: false }));
    }
  };
  const render = (s) =>
    s.dead
      ? deadLink(s.dead)
      : h(
          "form",
          { class: "login onboard", id: "setup", onsubmit: submit },
          h("h1", { text: "Welcome to ttlp" }),
          h("p", { text: "Create the owner account. The owner watches every streamer's feed and decides who else may log in: invite your moderators next." }),
          h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true, value: s.username, oninput: (e) => set("username", e.target.value) })),
          passwordFields(s, set),
          h("button", { type: "submit", class: "primary", disabled: s.busy, text: "Create the owner account" }),
          errors(s),
        );
  const update = bind(main, state, render);
  update();
  main.querySelector("input[name=username]")?.focus();
  api("/auth/setup", { quiet401: true })
    .then((setup) => setup.needed || update((s) => (s.dead = "This setup link is used up: setup is done, an account exists already. Log in.")))
    .catch(() => {}); // the submit says what is wrong
}

/** An invite: the invitee sees what they are invited as and picks a password. */
export function mountInvite(main, token, done) {
  const state = { invite: null, password: "", repeat: "", errors: [], busy: false, dead: "" };
  const set = (key, value) => update((s) => (s[key] = value));
  const submit = async (e) => {
    e.preventDefault();
    const problem = passwordProblem(state.password, state.repeat);
    if (problem) return update((s) => (s.errors = [problem]));
    update((s) => Object.assign(s, { errors: [], busy: true }));
    try {
      const res = await api("/auth/invite/accept", { method: "POST", body: { token, password: state.password }, quiet401: true });
      done(res.account, "");
    } catch (err) {
      const gone = err instanceof HttpError && (err.status === 404 || err.status === 410 || err.status === 409);
      update((s) => Object.assign(s, gone ? { dead: err.message } : { errors: explain(err) }, { busy: false }));
    }
  };
  const render = (s) => {
    if (s.dead) return deadLink(s.dead);
    if (!s.invite) return h("p", { class: "muted", text: "Opening the invite…" });
    return h(
      "form",
      { class: "login onboard", id: "invite-accept", onsubmit: submit },
      h("h1", { text: "Join ttlp" }),
      h("p", { text: `You are invited as ${inviteSummary(s.invite)}.` }),
      h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", readonly: true, value: s.invite.username })),
      passwordFields(s, set),
      h("button", { type: "submit", class: "primary", disabled: s.busy, text: "Create my account" }),
      errors(s),
    );
  };
  const update = bind(main, state, render);
  update();
  api("/auth/invite", { method: "POST", body: { token }, quiet401: true })
    .then((invite) => {
      update((s) => (s.invite = invite));
      main.querySelector("input[name=password]")?.focus();
    })
    .catch((err) => update((s) => (s.dead = err.message)));
}
