// Accounts' plain logic (src/ttlp/api/ui/accountlogic.js) and who may open the Accounts view
// (nav.js mayOpen).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  accountChange,
  expiresText,
  inviteLink,
  inviteSummary,
  isLastOwner,
  isOwner,
  parseScopes,
  passwordProblem,
  scopeInput,
  scopeText,
  usernameProblem,
} from "../../src/ttlp/api/ui/accountlogic.js";
import { mayOpen } from "../../src/ttlp/api/ui/nav.js";

const owner = { username: "luna", role: "STREAMER", scopes: ["*"], disabled: false };
const streamer = { username: "nova", role: "STREAMER", scopes: ["dj.nova"], disabled: false };
const mod = { username: "mod", role: "MODERATOR", scopes: ["luna.beats"], disabled: false };

describe("owner", () => {
  test("the owner is an enabled STREAMER of scope *", () => {
    assert.equal(isOwner(owner), true);
    assert.equal(isOwner(streamer), false);
    assert.equal(isOwner({ ...owner, role: "MODERATOR" }), false);
    assert.equal(isOwner({ ...owner, disabled: true }), false);
    assert.equal(isOwner(null), false);
  });

  test("the last owner is the only owner left", () => {
    assert.equal(isLastOwner(owner, [owner, streamer, mod]), true);
    const second = { ...owner, username: "co" };
    assert.equal(isLastOwner(owner, [owner, second]), false);
    assert.equal(isLastOwner(owner, [owner, { ...second, disabled: true }]), true);
    assert.equal(isLastOwner(mod, [owner, mod]), false);
  });

  test("only the owner may open an owner view; role views as before", () => {
    const accounts = { id: "accounts", min: "STREAMER", owner: true };
    const rules = { id: "rules", min: "MODERATOR" };
    assert.equal(mayOpen(owner, accounts), true);
    assert.equal(mayOpen(streamer, accounts), false);
    assert.equal(mayOpen(mod, accounts), false);
    assert.equal(mayOpen(mod, rules), true);
    assert.equal(mayOpen({ ...mod, role: "VIEWER" }, rules), false);
    assert.equal(mayOpen(null, rules), false);
  });
});

describe("scopes", () => {
  test("parseScopes: handles without @, lower case, once each; * alone means all", () => {
    assert.deepEqual(parseScopes("Luna.Beats, @other luna.beats"), { scopes: ["luna.beats", "other"] });
    assert.deepEqual(parseScopes("luna, *"), { scopes: ["*"] });
    assert.match(parseScopes("  ").error, /handle/);
    assert.match(parseScopes("luna, bad handle!").error, /Not a TikTok handle: handle!/);
  });

  test("scopeInput and scopeText", () => {
    assert.equal(scopeInput(["luna.beats", "other"]), "luna.beats, other");
    assert.equal(scopeText(["*"]), "every streamer");
    assert.equal(scopeText(["luna.beats", "other"]), "@luna.beats, @other");
  });
});

describe("forms", () => {
  test("usernameProblem: the server's rules, said before sending", () => {
    assert.equal(usernameProblem("mod_anna"), "");
    assert.equal(usernameProblem("anna@studio"), "");
    assert.match(usernameProblem(""), /Choose/);
    assert.match(usernameProblem("two words"), /no spaces/);
    assert.match(usernameProblem("Invites"), /reserved/);
  });

  test("passwordProblem: length first, then the repeat", () => {
    assert.match(passwordProblem("short", "short"), /at least 8/);
    assert.match(passwordProblem("long enough", "long enougj"), /differ/);
    assert.match(passwordProblem("x".repeat(1025), "x".repeat(1025)), /at most 1024/);
    assert.equal(passwordProblem("long enough", "long enough"), "");
  });

  test("accountChange: only what changed, or null; a bad scope is an error", () => {
    assert.deepEqual(accountChange(mod, { role: "MODERATOR", scope: "luna.beats" }), { body: null });
    assert.deepEqual(accountChange(mod, { role: "VIEWER", scope: "@Luna.Beats" }), { body: { role: "VIEWER" } });
    assert.deepEqual(accountChange(mod, { role: "MODERATOR", scope: "luna.beats, other" }), { body: { scopes: ["luna.beats", "other"] } });
    assert.match(accountChange(mod, { scope: "" }).error, /handle/);
  });
});

describe("invites", () => {
  test("inviteLink: the page's origin and the API's path", () => {
    assert.equal(inviteLink("http://127.0.0.1:3000", "/#/invite/abc"), "http://127.0.0.1:3000/#/invite/abc");
    assert.equal(inviteLink("https://ttlp.example/", "/#/invite/abc"), "https://ttlp.example/#/invite/abc");
  });

  test("expiresText: minutes, hours, days, expired", () => {
    const now = Date.parse("2026-12-06T12:00:00Z");
    assert.equal(expiresText("2026-12-06T12:10:00Z", now), "in 10 min");
    assert.equal(expiresText("2026-12-06T17:00:00Z", now), "in 5 h");
    assert.equal(expiresText("2026-12-09T12:00:00Z", now), "in 3 days");
    assert.equal(expiresText("2026-12-06T11:00:00Z", now), "expired");
    assert.equal(expiresText("not a date", now), "");
  });

  test("inviteSummary: the role and the streamers, in words", () => {
    assert.equal(inviteSummary({ role: "MODERATOR", scopes: ["luna.beats"] }), "moderator of @luna.beats");
    assert.equal(inviteSummary({ role: "VIEWER", scopes: ["*"] }), "viewer of every streamer");
  });
});
