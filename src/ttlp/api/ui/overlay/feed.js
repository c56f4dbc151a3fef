// The overlay's connection to ttlp: which overlay this page is (from its address), the URLs of
// its state and feed, and the feed itself (an EventSource on /overlay/feed).
//
// EventSource reconnects by itself after a drop (ttlp restarting, the network) and sends
// ``Last-Event-ID``, so nothing is missed. When it gives up (the server answered with an error
// status: refused, or restarting behind a proxy) the connection asks ``probe()`` whether the
// token still works: if not the overlay stops; else a new EventSource resumes after the last
// event with ``?lastEventId=``. Events are handed over in batches, at most once per animation
// frame (and at least every ``FLUSH_MS`` when frames do not come: a hidden page), so a burst
// costs one update of the page per frame, not one per event.

export const FLUSH_MS = 250;
export const RETRY_MS = 3000;
export const MAX_PENDING = 20_000;

/** The overlay this address asks for: ``{kind, token, preview}`` (kind from /overlay/{kind}). */
export function overlayParams(loc) {
  const url = new URL(loc.href);
  const match = url.pathname.match(/\/overlay\/([a-z]+)\/?$/);
  return {
    kind: match ? match[1] : "",
    token: url.searchParams.get("token") ?? "",
    preview: url.searchParams.get("preview") === "1",
  };
}

function query(params, extra = {}) {
  const q = new URLSearchParams({ token: params.token, ...extra });
  if (params.preview) q.set("preview", "1");
  return q.toString();
}

export function stateUrl(params) {
  return `/overlay/state?${query(params, { kind: params.kind })}`;
}

export function feedUrl(params, lastEventId = "") {
  return `/overlay/feed?${query(params, lastEventId ? { lastEventId } : {})}`;
}

export function soundUrl(params, soundId) {
  return `/overlay/sounds/${encodeURIComponent(soundId)}?${query({ token: params.token })}`;
}

/** Parse a batch of SSE data lines; what is not JSON is skipped. */
export function parseBatch(lines) {
  const out = [];
  for (const line of lines) {
    try {
      out.push(JSON.parse(line));
    } catch {
      // not an event: skipped
    }
  }
  return out;
}

export class OverlayConnection {
  /** ``on``: {events(batch), gap(), options(data), skip(), revoked(), status(text)};
   * ``probe()`` → "ok" | "revoked" | "down" (is the token still good?). */
  constructor(params, on, { probe, EventSource = globalThis.EventSource, frame } = {}) {
    this.params = params;
    this.on = on;
    this.probe = probe ?? (async () => "ok");
    this.EventSource = EventSource;
    // Called unbound: requestAnimationFrame refuses to run with another ``this``.
    this.frame = frame ?? (globalThis.requestAnimationFrame ? (fn) => globalThis.requestAnimationFrame(fn) : (fn) => setTimeout(fn, 16));
    this.pending = [];
    this.lastEventId = "";
    this.scheduled = false;
    this.closed = false;
    this.es = null;
  }

  start() {
    if (this.closed) return;
    const es = new this.EventSource(feedUrl(this.params, this.lastEventId));
    this.es = es;
    const take = (m) => {
      if (m.lastEventId) this.lastEventId = m.lastEventId;
      this.pending.push(m.data);
      if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING);
      this.schedule();
    };
    es.addEventListener("event", take);
    es.addEventListener("message", take);
    es.addEventListener("gap", () => this.on.gap?.());
    es.addEventListener("options", (m) => this.on.options?.(safeJson(m.data)));
    es.addEventListener("skip", () => this.on.skip?.());
    es.addEventListener("revoked", () => {
      this.close();
      this.on.revoked?.();
    });
    es.addEventListener("open", () => this.on.status?.("live"));
    es.addEventListener("error", () => {
      if (this.closed || es !== this.es) return;
      if (es.readyState !== this.EventSource.CLOSED) {
        this.on.status?.("reconnecting"); // it resumes by itself with Last-Event-ID
        return;
      }
      es.close();
      this.on.status?.("offline");
      this.retry();
    });
  }

  async retry() {
    const verdict = await this.probe().catch(() => "down");
    if (this.closed) return;
    if (verdict === "revoked") {
      this.close();
      this.on.revoked?.();
      return;
    }
    this.timer = setTimeout(() => this.start(), RETRY_MS);
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    const flush = () => this.flush();
    this.frame(flush);
    this.fallback = setTimeout(flush, FLUSH_MS);
  }

  flush() {
    if (!this.scheduled) return; // the frame and the fallback both fire: the first one does it
    this.scheduled = false;
    clearTimeout(this.fallback);
    const lines = this.pending;
    this.pending = [];
    if (this.closed || !lines.length) return;
    this.on.events?.(parseBatch(lines));
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.fallback);
    this.pending = [];
    this.es?.close();
  }
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
