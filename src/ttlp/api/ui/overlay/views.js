// The overlays on the page: one widget per kind, each ``mount*(root, ctx)`` → {setState(state,
// buffered), apply(events), skip(), clear()}. ``apply`` gets the events of one animation frame
// (feed.js), so each widget touches the page at most once per frame, and keeps a bounded
// number of elements. Event content only reaches the page as text (textContent, text nodes);
// pictures only from TikTok's CDN (dom.js ``cdnImg``). A replayed event (the builder's
// preview shows replays) is marked as one (``data-source``, overlay.css), as everywhere in ttlp.
//
// Banned words are masked wherever a viewer's words or name are shown (chat, names on alerts,
// the leaderboard and the ticker) and dropped from speech (tts.js).
//
// ``ctx``: {params, synth, Utterance (speech), now(), refresh() (fetch the state again, e.g.
// when events of a new session arrive)}.

import { cdnImg, h, patch } from "../dom.js";
import { AlertQueue, alertSpeech, alertText } from "./alerts.js";
import { badgesOf, ChatLog, chatName, messageParts } from "./chat.js";
import { soundUrl } from "./feed.js";
import { Goal } from "./goal.js";
import { Leaderboard } from "./leaderboard.js";
import { withDefaults } from "./options.js";
import { copiesFor, scrollSeconds, Ticker } from "./ticker.js";
import { Speaker } from "./tts.js";
import { bannedMatcher } from "./words.js";

const numbers = new Intl.NumberFormat();
const fmt = (n) => numbers.format(n);

/** Whether an event belongs to a live session other than the one the state describes (the
 * streamer went live again, or ttlp reconnected): totals must be fetched again. */
function newSession(ev, state) {
  return ev.source === "live" && Boolean(ev.sessionId) && ev.sessionId !== state?.session?.id;
}

// -- alerts --------------------------------------------------------------------------------------
function alertCard(alert, mask) {
  const ev = alert.ev;
  const t = alertText(alert);
  const gift = alert.kind === "gift";
  return h(
    "div",
    { class: `alert alert-${alert.kind}`, dataset: { kind: alert.kind, alertId: String(alert.id), final: alert.final ? "1" : "0", source: ev.source }, role: "status" },
    h("div", { class: "alert-pics" }, cdnImg(ev.user?.avatarUrl, "alert-avatar"), gift ? cdnImg(ev.payload?.giftImageUrl, "alert-gift-pic") : null),
    h(
      "div",
      { class: "alert-text" },
      h("div", { class: "alert-who", text: mask(t.who) }),
      h("div", { class: "alert-what", text: t.what }),
      gift ? h("div", { class: "alert-coins", text: `${fmt(alert.coins)} coins` }) : null,
    ),
  );
}

export function mountAlerts(root, ctx) {
  const queue = new AlertQueue();
  const speaker = new Speaker({ synth: ctx.synth, Utterance: ctx.Utterance, now: ctx.now });
  const stage = h("div", { class: "alert-stage" });
  const audio = h("audio", { class: "alert-sound", preload: "auto" });
  root.replaceChildren(stage, audio);
  let options = withDefaults(null).alerts;
  let matcher = bannedMatcher([]);
  let shown = null; // {id, ver, el} of the card on the page
  let timer = 0;

  const paint = () => {
    const alert = queue.current;
    if (!alert) {
      if (shown) stage.replaceChildren();
      shown = null;
      return;
    }
    if (shown?.id !== alert.id) {
      shown = { id: alert.id, ver: alert.ver, el: alertCard(alert, matcher.mask) };
      stage.replaceChildren(shown.el);
      return;
    }
    if (shown.ver === alert.ver) return;
    shown.ver = alert.ver;
    const t = alertText(alert);
    shown.el.querySelector(".alert-what").textContent = t.what;
    const coins = shown.el.querySelector(".alert-coins");
    if (coins) coins.textContent = `${fmt(alert.coins)} coins`;
    shown.el.dataset.final = alert.final ? "1" : "0";
    shown.el.classList.remove("bump");
    void shown.el.offsetWidth; // restart the bump animation
    shown.el.classList.add("bump");
  };

  const announce = (alert) => {
    const sound = options.sounds?.[alert.kind];
    if (sound !== null && sound !== undefined) {
      audio.src = soundUrl(ctx.params, sound);
      audio.volume = Math.min(1, Math.max(0, Number(options.volume) || 0));
      audio.play()?.catch(() => {}); // a browser that blocks autoplay: no sound, the alert still shows
    }
    if (options.tts.alerts) speaker.say(alertSpeech(alert), alert.ev.user?.userId, { urgent: true });
  };

  // Move the queue on now, and again when the alert on screen is due to go.
  const pump = () => {
    clearTimeout(timer);
    const now = ctx.now();
    const { shown: next, ended } = queue.tick(now);
    if (next || ended) paint();
    if (next) announce(next);
    const delay = queue.nextDelay(now);
    if (delay !== null) timer = setTimeout(pump, delay + 1);
  };

  const skip = () => {
    queue.skip(ctx.now());
    speaker.cancel();
    audio.pause();
    paint();
    pump();
  };

  const onKey = (e) => {
    const key = options.skipKey;
    if (key && (e.key === key || e.code === key || e.key.toLowerCase() === String(key).toLowerCase())) skip();
  };
  window.addEventListener("keydown", onKey);

  return {
    setState(state, buffered = []) {
      const all = withDefaults(state.options);
      options = all.alerts;
      matcher = bannedMatcher(all.common.bannedWords);
      queue.configure(options);
      speaker.configure({ tts: options.tts, bannedWords: all.common.bannedWords });
      this.apply(buffered);
      pump();
    },
    apply(events) {
      const now = ctx.now();
      for (const ev of events) {
        if (ev.eventType === "CHAT" && options.tts.chat) {
          const who = ev.user?.displayName || ev.user?.uniqueId || "someone";
          speaker.say(`${who} says ${ev.payload?.message ?? ""}`, ev.user?.userId);
        }
        queue.offer(ev, now);
      }
      paint();
      pump();
    },
    skip,
    clear() {
      clearTimeout(timer);
      window.removeEventListener("keydown", onKey);
      queue.clear();
      speaker.cancel();
      audio.pause();
      audio.removeAttribute("src");
      root.replaceChildren();
    },
  };
}

// -- chat ----------------------------------------------------------------------------------------
function chatLine(ev, opts, matcher) {
  const user = ev.user ?? {};
  const parts = messageParts(ev.payload, { images: opts.emoteImages, mask: matcher.mask });
  return h(
    "li",
    { class: "chat-msg", dataset: { eventId: ev.eventId, source: ev.source } },
    opts.showBadges ? badgesOf(user).map((b) => h("span", { class: `chat-badge badge-${b.kind}`, title: b.title, text: b.text })) : null,
    h("span", { class: "chat-name", text: matcher.mask(chatName(user)) }),
    h(
      "span",
      { class: "chat-text" },
      parts.map((p) => (p.emote ? cdnImg(p.emote, "chat-emote") : p.text)),
    ),
  );
}

// Lines per second from which new lines come without their entry animation: in a flood they
// only fly by, and animating each would cost the page a style pass every frame.
const CHAT_BUSY_PER_S = 4;

export function mountChat(root, ctx) {
  const log = new ChatLog();
  const list = h("ol", { class: "chat-list" });
  root.replaceChildren(list);
  let opts = withDefaults(null).chat;
  let matcher = bannedMatcher([]);
  let lines = new Map(); // eventId → its <li>
  let rate = 0; // lines per second, decaying
  let rateAt = ctx.now();

  const busy = (added) => {
    const now = ctx.now();
    rate = rate * Math.exp(-(now - rateAt) / 1000) + added;
    rateAt = now;
    list.classList.toggle("busy", rate >= CHAT_BUSY_PER_S);
  };

  const sync = () => {
    for (const [id, li] of lines) {
      if (!log.ids.has(id)) {
        li.remove();
        lines.delete(id);
      }
    }
    const fresh = [];
    for (const ev of log.items) {
      if (lines.has(ev.eventId)) continue;
      const li = chatLine(ev, opts, matcher);
      lines.set(ev.eventId, li);
      fresh.push(li);
    }
    if (fresh.length) {
      busy(fresh.length);
      list.append(...fresh);
    }
  };

  return {
    setState(state, buffered = []) {
      const all = withDefaults(state.options);
      opts = all.chat;
      matcher = bannedMatcher(all.common.bannedWords);
      root.style.setProperty("--chat-font", `${Math.max(8, Number(opts.fontSize) || 18)}px`);
      log.setMax(opts.maxMessages);
      log.reset(state.recent ?? []);
      for (const ev of buffered) log.add(ev);
      lines = new Map();
      list.replaceChildren();
      sync();
    },
    apply(events) {
      let changed = false;
      for (const ev of events) changed = log.add(ev) || changed;
      if (changed) sync();
    },
    skip() {},
    clear() {
      root.replaceChildren();
    },
  };
}

// -- leaderboard ---------------------------------------------------------------------------------
function boardRow(row, i, mask) {
  return h(
    "li",
    { class: "board-row", key: row.userId, dataset: { userId: row.userId } },
    h("span", { class: "board-rank", text: String(i + 1) }),
    cdnImg(row.avatarUrl, "board-avatar"),
    h("span", { class: "board-name", text: mask(row.displayName || (row.uniqueId ? `@${row.uniqueId}` : row.userId)) }),
    h("span", { class: "board-coins", text: fmt(row.coins) }),
  );
}

export function mountLeaderboard(root, ctx) {
  const board = new Leaderboard();
  const title = h("div", { class: "board-title", text: "Top gifters" });
  const list = h("ol", { class: "board-list" });
  root.replaceChildren(h("div", { class: "board" }, title, list));
  let state = null;
  let count = 5;
  let matcher = bannedMatcher([]);
  const paint = () => patch(list, board.top(count).map((row, i) => boardRow(row, i, matcher.mask)));

  return {
    setState(next) {
      state = next;
      const all = withDefaults(next.options);
      const opts = all.leaderboard;
      matcher = bannedMatcher(all.common.bannedWords);
      count = Math.max(1, Math.floor(Number(opts.count) || 5));
      title.textContent = opts.scope === "stream" ? "Top gifters of the stream" : "Top gifters";
      board.load(next.leaderboard ?? []);
      paint();
    },
    apply(events) {
      let changed = false;
      for (const ev of events) {
        if (newSession(ev, state)) ctx.refresh();
        changed = board.add(ev) || changed;
      }
      if (changed) paint();
    },
    skip() {},
    clear() {
      root.replaceChildren();
    },
  };
}

// -- goal ----------------------------------------------------------------------------------------
export function mountGoal(root, ctx) {
  const goal = new Goal();
  const title = h("span", { class: "goal-title" });
  const count = h("span", { class: "goal-count" });
  const fill = h("div", { class: "goal-fill" });
  const box = h("div", { class: "goal" }, h("div", { class: "goal-head" }, title, count), h("div", { class: "goal-bar" }, fill));
  root.replaceChildren(box);
  let state = null;
  const paint = () => {
    const v = goal.view();
    title.textContent = v.title;
    count.textContent = `${fmt(v.current)} / ${fmt(v.target)}`;
    fill.style.transform = `scaleX(${v.ratio})`;
    box.dataset.reached = v.reached ? "1" : "0";
    box.dataset.metric = goal.metric;
  };

  return {
    setState(next) {
      state = next;
      const opts = withDefaults(next.options).goal;
      goal.load({ metric: opts.metric, target: opts.target, title: opts.title, ...(next.goal ?? {}) });
      paint();
    },
    apply(events) {
      let changed = false;
      for (const ev of events) {
        if (newSession(ev, state)) ctx.refresh();
        changed = goal.add(ev) || changed;
      }
      if (changed) paint();
    },
    skip() {},
    clear() {
      root.replaceChildren();
    },
  };
}

// -- ticker --------------------------------------------------------------------------------------
const TICK_ICONS = { FOLLOW: "+", SHARE: "↗", SUBSCRIBE: "★", GIFT: "🎁", CHAT: "💬", LIKE: "♥", JOIN: "→", EMOTE: "☺" };

function tickerRun(items) {
  return h(
    "div",
    { class: "ticker-run" },
    items.map((x) =>
      h(
        "span",
        { class: `tick tick-${x.type.toLowerCase()}`, dataset: { type: x.type, eventId: x.id, source: x.source } },
        x.picture ? cdnImg(x.picture, "tick-pic") : h("span", { class: "tick-icon", text: TICK_ICONS[x.type] ?? "•" }),
        h("span", { class: "tick-who", text: x.who }),
        h("span", { class: "tick-text", text: x.text }),
      ),
    ),
  );
}

export function mountTicker(root, ctx) {
  const ticker = new Ticker();
  const track = h("div", { class: "ticker-track" });
  const box = h("div", { class: "ticker" }, track);
  root.replaceChildren(box);
  let speed = 60;
  let dirty = false; // new items wait for the end of a loop (no jump mid-scroll)

  // Lay the items out: enough copies of the run to fill the width and one more, the track
  // moving by one run per loop, at ``speed`` px/s.
  const paint = () => {
    dirty = false;
    const items = ticker.items;
    box.dataset.empty = items.length ? "0" : "1";
    if (!items.length) {
      track.replaceChildren();
      track.classList.remove("running");
      return;
    }
    const first = tickerRun(items);
    track.replaceChildren(first);
    const run = first.getBoundingClientRect().width;
    const copies = copiesFor(run, box.clientWidth);
    for (let i = 1; i < copies; i += 1) track.append(tickerRun(items));
    track.style.setProperty("--run", `${run}px`);
    track.style.animationDuration = `${scrollSeconds(run, speed)}s`;
    track.classList.remove("running");
    void track.offsetWidth; // restart from the beginning
    track.classList.add("running");
  };
  track.addEventListener("animationiteration", () => dirty && paint());
  const changed = () => {
    if (!track.classList.contains("running")) paint();
    else dirty = true;
  };

  return {
    setState(state, buffered = []) {
      const all = withDefaults(state.options);
      const opts = all.ticker;
      speed = Number(opts.speedPxPerS) || 60;
      ticker.configure({ kinds: opts.kinds, count: opts.count, mask: bannedMatcher(all.common.bannedWords).mask });
      ticker.reset(state.recent ?? []);
      for (const ev of buffered) ticker.add(ev);
      paint();
    },
    apply(events) {
      let any = false;
      for (const ev of events) any = ticker.add(ev) || any;
      if (any) changed();
    },
    skip() {},
    clear() {
      root.replaceChildren();
    },
  };
}

export const WIDGETS = { alerts: mountAlerts, chat: mountChat, leaderboard: mountLeaderboard, goal: mountGoal, ticker: mountTicker };
