// An OBS overlay (GET /overlay/{kind}?token=…[&preview=1]): the page's state from
// /overlay/state, then the live feed from /overlay/feed, drawn by the widget of its kind
// (views.js). The token is the only credential (no cookie is sent or needed).
//
// The feed opens first and what it brings while the state loads is kept (``buffered``), so
// nothing falls between the two. ``options`` and ``gap`` fetch the state again; ``skip`` ends
// the current alert and stops speaking; ``revoked`` (or a token the server no longer takes)
// closes the feed and clears the page for good: ``body[data-state=revoked]``.

import { OverlayConnection, overlayParams, stateUrl } from "./feed.js";
import { WIDGETS } from "./views.js";

const REFRESH_DELAY_MS = 1000;
const REFRESH_MIN_GAP_MS = 5000;
const STATE_RETRY_MS = 3000;
const MAX_BUFFERED = 2000;

const params = overlayParams(location);
const root = document.getElementById("overlay");
const body = document.body;
// What the page has taken in, for a look from the browser's console (and the load tests).
const stats = { received: 0, batches: 0 };
window.ttlpOverlay = stats;

class Refused extends Error {}

/** GET /overlay/state: the state, or ``Refused`` when the token is no good (401/403). */
async function fetchState() {
  const res = await fetch(stateUrl(params), { cache: "no-store", credentials: "omit", headers: { accept: "application/json" } });
  if (res.status === 401 || res.status === 403) throw new Refused(`token refused (${res.status})`);
  if (!res.ok) throw new Error(`state: HTTP ${res.status}`);
  return res.json();
}

function start() {
  const mount = WIDGETS[params.kind];
  body.dataset.kind = params.kind;
  if (!mount || !params.token) {
    body.dataset.state = "invalid";
    return;
  }
  body.dataset.state = "loading";
  if (params.preview) body.dataset.preview = "1";

  let state = null;
  let buffered = [];
  let stopped = false;
  let loading = null;
  let lastRefresh = 0;
  let refreshTimer = 0;

  const ctx = {
    params,
    synth: window.speechSynthesis ?? null,
    Utterance: window.SpeechSynthesisUtterance ?? null,
    now: () => performance.now(),
    refresh: () => {
      // Events of a new session: fetch the totals again, soon (the store writes the session a
      // moment after its first events) and not more often than every few seconds.
      if (refreshTimer || stopped) return;
      const wait = Math.max(REFRESH_DELAY_MS, lastRefresh + REFRESH_MIN_GAP_MS - Date.now());
      refreshTimer = setTimeout(() => {
        refreshTimer = 0;
        load();
      }, wait);
    },
  };
  const widget = mount(root, ctx);

  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(refreshTimer);
    connection.close();
    widget.clear();
    root.replaceChildren();
    body.dataset.state = "revoked";
  };

  const load = () => {
    if (loading || stopped) return loading;
    lastRefresh = Date.now();
    loading = fetchState()
      .then((next) => {
        if (stopped) return;
        const pending = state ? [] : buffered;
        state = next;
        buffered = [];
        widget.setState(next, pending);
        body.dataset.state = "ready";
        body.dataset.optionsVersion = String(next.optionsVersion ?? "");
      })
      .catch((err) => {
        if (err instanceof Refused) return stop();
        if (!state) setTimeout(load, STATE_RETRY_MS); // ttlp restarting: try again
      })
      .finally(() => {
        loading = null;
      });
    return loading;
  };

  const probe = async () => {
    try {
      await fetchState();
      return "ok";
    } catch (err) {
      return err instanceof Refused ? "revoked" : "down";
    }
  };

  const connection = new OverlayConnection(
    params,
    {
      events: (batch) => {
        stats.received += batch.length;
        stats.batches += 1;
        if (state) widget.apply(batch);
        else {
          buffered.push(...batch);
          if (buffered.length > MAX_BUFFERED) buffered.splice(0, buffered.length - MAX_BUFFERED);
        }
      },
      gap: () => load(),
      options: () => load(),
      skip: () => widget.skip(),
      revoked: () => stop(),
      status: (text) => (body.dataset.feed = text),
    },
    { probe },
  );
  connection.start();
  load();
}

start();
