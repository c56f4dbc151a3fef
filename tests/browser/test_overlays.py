"""The OBS overlays (``/overlay/{kind}?token=…``) and the UI's Overlays page in Chromium,
against a running ttlp on Redis: UnifiedEvents published onto its ``ttlc:events`` (as its
normalizer would) reach the overlays through its store and its api feed.

Each overlay: events in → what appears, in order; alerts one at a time with gift streaks
folded, text-to-speech with the filtered text (``speechSynthesis`` replaced by a recorder before
the page loads: the page's CSP binds the page's scripts, not Playwright's init script); a
revoked token clears its open overlays; a restart of ttlp is survived with ``Last-Event-ID``.
The alerts and chat overlays' frame times at 10,000 events/min are measured and printed, never
asserted (tests never assert on wall time). Screenshots go to the test artifacts, the overlays
over a half light, half dark backdrop (they are transparent: that is how a stream shows them).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
import threading
import time
import wave
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.support.browser import (
    CDN_HOSTS,
    PASSWORD,
    STREAMER,
    Server,
    screenshot,
    start_server,
    stop_server,
    wait_until,
)
from tests.support.overlay_events import (
    AKHMED,
    OWL,
    XIAOMING,
    ZOE,
    LiveSession,
    Viewer,
)
from tests.support.services import delete_keys_at, new_key_prefix, run_sync

pytestmark = pytest.mark.browser

JWT_SECRET = "overlay-browser-tests-jwt-secret-0123456789abcdef"
ROLES = "normalize,store,api"
"""No ingest: the tests are the only source of events."""
CHATTY = Viewer("7012345678901234599", "chatty.cathy", "Cathy")
REVOKED_WITHIN_S = 15.0
"""How long a revoked overlay may take to clear (the server polls tokens every ~2 s)."""
LOAD_RATE = 10_000 / 60  # events/s
LOAD_S = 30.0
BACKDROP = "linear-gradient(135deg, #f4f1ea 0 50%, #1d2b3a 50% 100%)"
SIZES = {
    "alerts": (800, 450),
    "chat": (400, 600),
    "leaderboard": (480, 360),
    "goal": (800, 160),
    "ticker": (1000, 64),
}

SPEECH_AND_PROBES = """(() => {
  // speechSynthesis and SpeechSynthesisUtterance replaced by recorders; media play() recorded.
  const tts = { spoken: [], cancels: 0 };
  window.__tts = tts;
  class Utterance {
    constructor(text) {
      Object.assign(this, { text, rate: 1, voice: null, onend: null, onerror: null });
    }
  }
  const synth = {
    speaking: false, pending: false, paused: false,
    speak(u) {
      tts.spoken.push({ text: u.text, rate: u.rate, voice: u.voice ? u.voice.name : null });
      setTimeout(() => u.onend && u.onend({}), 30);
    },
    cancel() { tts.cancels += 1; },
    getVoices() { return [{ name: "Test Voice", lang: "en" }, { name: "Other", lang: "de" }]; },
    addEventListener() {}, removeEventListener() {},
  };
  const fixed = (value) => ({ value, configurable: true, writable: true });
  Object.defineProperty(window, "speechSynthesis", fixed(synth));
  Object.defineProperty(window, "SpeechSynthesisUtterance", fixed(Utterance));
  window.__played = [];
  HTMLMediaElement.prototype.play = function () {
    window.__played.push({ src: this.src, volume: this.volume });
    return Promise.resolve();
  };
  // Every alert card that ever shows: its texts in turn, and the most on screen at once.
  const alerts = { seen: [], maxVisible: 0 };
  window.__alerts = alerts;
  const look = () => {
    const cards = document.querySelectorAll(".alert");
    alerts.maxVisible = Math.max(alerts.maxVisible, cards.length);
    for (const card of cards) {
      const id = card.dataset.alertId;
      let rec = alerts.seen.find((r) => r.id === id);
      if (!rec) {
        const who = card.querySelector(".alert-who")?.textContent;
        rec = { id, kind: card.dataset.kind, who, texts: [], final: null };
        alerts.seen.push(rec);
      }
      const text = card.querySelector(".alert-what")?.textContent;
      if (rec.texts.at(-1) !== text) rec.texts.push(text);
      rec.final = card.dataset.final;
    }
  };
  const all = { subtree: true, childList: true, characterData: true, attributes: true };
  new MutationObserver(look).observe(document, all);
})();"""

FRAME_PROBE = """() => {
  const probe = { gaps: [], longTasks: [], nodes: 0, last: performance.now() };
  window.__probe = probe;
  const tick = (now) => {
    probe.gaps.push(now - probe.last);
    probe.last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) probe.longTasks.push(e.duration);
  }).observe({ type: "longtask", buffered: false });
  setInterval(() => {
    probe.nodes = Math.max(probe.nodes, document.getElementsByTagName("*").length);
  }, 100);
}"""

DIAGNOSIS = (
    "(() => `state ${document.body.dataset.state} feed ${document.body.dataset.feed} "
    "received ${window.ttlpOverlay?.received}\\n"
    "${document.getElementById('overlay')?.innerText}`)()"
)


def png(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    """A plain square picture (the stand-in for TikTok's CDN: no internet here)."""
    row = b"\x00" + bytes(rgb) * size
    raw = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def cdn_picture(route: Any) -> None:
    """Answer a TikTok CDN picture with a square of a colour of its URL's own."""
    digest = hashlib.sha256(route.request.url.encode()).digest()
    route.fulfill(status=200, content_type="image/png", body=png((digest[0], digest[1], digest[2])))


def silent_wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(int(seconds * rate) * 2))
    return out.getvalue()


# -- the server, its bus, the streamer's side -----------------------------------------------------
@pytest.fixture(scope="module")
def bus_env(redis_url: str) -> Iterator[dict[str, str]]:
    prefix = new_key_prefix()
    yield {"REDIS_URL": redis_url, "REDIS_CONSUMER_GROUP_PREFIX": prefix, "JWT_SECRET": JWT_SECRET}
    run_sync(delete_keys_at(redis_url, prefix))


@pytest.fixture(scope="module")
def overlay_server(
    tmp_path_factory: pytest.TempPathFactory, chromium: Any, bus_env: dict[str, str]
) -> Iterator[Server]:
    instance = start_server(
        tmp_path_factory.mktemp("overlays"), "--roles", ROLES, extra_env=bus_env
    )
    yield instance
    stop_server(instance)


@pytest.fixture(scope="module")
def bus(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def new_context(browser: Any, server: Server, size: tuple[int, int], **kwargs: Any) -> Any:
    width, height = size
    context = browser.new_context(
        viewport={"width": width, "height": height}, base_url=server.url, **kwargs
    )
    for host in CDN_HOSTS:
        context.route(f"https://*.{host}/**", cdn_picture)
    return context


class Studio:
    """The streamer's side: a logged-in context (its cookie) for the management API."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.server = server
        self.context = new_context(browser, server, (1400, 900))
        self.request = self.context.request
        login = self.request.post(
            "/auth/login", data={"username": "streamer", "password": PASSWORD}
        )
        assert login.ok, login.text()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request.fetch(path, method=method, **kwargs)
        assert response.ok, f"{method} {path}: {response.status} {response.text()}"
        return None if response.status == 204 else response.json()

    def token(self, name: str) -> dict[str, Any]:
        made: dict[str, Any] = self.call(
            "POST", "/overlays/tokens", data={"name": name, "streamer": STREAMER}
        )
        return made

    def options(self, token: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        saved: dict[str, Any] = self.call(
            "PUT", f"/overlays/tokens/{token['id']}/options", data=patch
        )
        return saved

    def sound(self, name: str) -> dict[str, Any]:
        made: dict[str, Any] = self.call(
            "POST",
            "/overlays/sounds",
            multipart={
                "file": {"name": f"{name}.wav", "mimeType": "audio/wav", "buffer": silent_wav()},
                "name": name,
                "streamer": STREAMER,
            },
        )
        return made

    def state(self, token: dict[str, Any], kind: str) -> dict[str, Any]:
        response = self.request.get(
            "/overlay/state", params={"token": token["token"], "kind": kind}
        )
        assert response.ok, response.text()
        body: dict[str, Any] = response.json()
        return body

    def wait_state(
        self,
        token: dict[str, Any],
        kind: str,
        session: str,
        ready: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout_s: float = 20.0,
    ) -> dict[str, Any]:
        """Poll /overlay/state until it is of ``session`` (the store writes a moment after the
        bus, and the sessions of the tests before may still look current) and ``ready``."""
        deadline = time.monotonic() + timeout_s
        while True:
            body = self.state(token, kind)
            if (body["session"] or {}).get("id") == session and ready(body):
                return body
            assert time.monotonic() < deadline, f"state never ready: {json.dumps(body)[:800]}"
            time.sleep(0.2)


@pytest.fixture
def studio(browser: Any, overlay_server: Server) -> Iterator[Studio]:
    instance = Studio(browser, overlay_server)
    yield instance
    instance.context.close()


@pytest.fixture
def live(bus: redis.Redis, bus_env: dict[str, str]) -> Iterator[LiveSession]:
    """A live session of the streamer of this test's own, ended afterwards."""
    session = LiveSession(bus, bus_env["REDIS_CONSUMER_GROUP_PREFIX"], STREAMER)
    session.publish(session.connected())
    yield session
    session.publish(session.disconnected())


@pytest.fixture
def open_overlay(browser: Any, overlay_server: Server) -> Iterator[Callable[..., Any]]:
    """``open_overlay(kind, token)`` → a page showing the overlay, its feed open, in a
    context of its own without any login (the token is its only credential)."""
    contexts: list[Any] = []

    def _open(kind: str, token: dict[str, Any], *, preview: bool = False) -> Any:
        context = new_context(browser, overlay_server, SIZES[kind])
        contexts.append(context)
        context.add_init_script(SPEECH_AND_PROBES)
        page = context.new_page()
        page.goto(f"/overlay/{kind}?token={token['token']}{'&preview=1' if preview else ''}")
        wait_until(
            page,
            "document.body.dataset.state === 'ready' && document.body.dataset.feed === 'live'",
        )
        return page

    yield _open
    for context in contexts:
        context.close()


def overlay_shot(page: Any, name: str) -> None:
    """A screenshot of an overlay over a light/dark backdrop (set from outside the page's CSP;
    the page itself stays transparent)."""
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"
    page.evaluate(f"document.documentElement.style.background = '{BACKDROP}'")
    screenshot(page, name)
    page.evaluate("document.documentElement.style.background = ''")


def wait(page: Any, expression: str, timeout_s: float = 20.0) -> Any:
    try:
        return wait_until(page, expression, timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{page.evaluate(DIAGNOSIS)}") from None


# -- alerts ----------------------------------------------------------------------------------------
def test_alerts_come_one_at_a_time_in_order_streaks_folded_with_filtered_speech_and_sound(
    studio: Studio, live: LiveSession, open_overlay: Callable[..., Any], overlay_server: Server
) -> None:
    token = studio.token("alerts")
    sound = studio.sound("ding")
    studio.options(
        token,
        {
            "common": {"bannedWords": ["darn"]},
            "alerts": {
                "durationMs": 1500,
                "minCoins": 100,
                "sounds": {"follow": sound["id"]},
                "volume": 0.5,
                "tts": {
                    "alerts": True,
                    "chat": True,
                    "maxLength": 40,
                    "perUserSeconds": 30,
                    "voice": "Test Voice",
                    "rate": 1.2,
                },
            },
        },
    )
    page = open_overlay("alerts", token)
    long_chat = "DARN this stream is great and I will keep watching all night long"
    live.publish(
        live.follow(ZOE),
        live.share(OWL),
        live.gift(AKHMED, name="Rose", diamonds=1),  # 1 coin: under minCoins, never shown
        *live.streak(XIAOMING, 5, name="Galaxy", diamonds=1000),  # arrives while queued
        live.subscribe(AKHMED),
        live.chat(CHATTY, long_chat),
        live.chat(CHATTY, "a second message within perUserSeconds"),
    )
    wait(
        page,
        "window.__alerts.seen.length === 4 && !document.querySelector('.alert')"
        " && window.__tts.spoken.length >= 5",
        30,
    )
    seen = page.evaluate("window.__alerts")
    assert [(r["kind"], r["who"]) for r in seen["seen"]] == [
        ("follow", ZOE.display_name),
        ("share", OWL.display_name),
        ("gift", XIAOMING.display_name),
        ("subscribe", AKHMED.display_name),
    ]
    assert seen["maxVisible"] == 1
    gift = seen["seen"][2]
    # The streak's frames came while it waited: it showed once, already at its final count.
    assert (gift["texts"], gift["final"]) == (["sent Galaxy ×5"], "1")

    tts = page.evaluate("window.__tts")
    spoken = [u["text"] for u in tts["spoken"]]
    # The chat line: "DARN" dropped, cut to 40 characters at a word break; the second chat of
    # the same viewer within perUserSeconds is not spoken.
    chat_line = "Cathy says this stream is great and I"
    assert spoken.count(chat_line) == 1
    assert not any("second message" in text for text in spoken)
    assert [text for text in spoken if text != chat_line] == [
        f"{ZOE.display_name} followed",
        f"{OWL.display_name} shared the live",
        f"{XIAOMING.display_name} sent 5 Galaxy",
        f"{AKHMED.display_name} subscribed",
    ]
    assert {(u["voice"], u["rate"]) for u in tts["spoken"]} == {("Test Voice", 1.2)}
    # The follow's sound, from ttlp, by the token; the other kinds have none.
    played = page.evaluate("window.__played")
    assert played == [
        {
            "src": f"{overlay_server.url}/overlay/sounds/{sound['id']}?token={token['token']}",
            "volume": 0.5,
        }
    ]


def test_a_streak_on_screen_grows_in_place_and_the_skip_key_and_button_end_alerts(
    studio: Studio, live: LiveSession, open_overlay: Callable[..., Any]
) -> None:
    token = studio.token("skip")
    studio.options(token, {"alerts": {"durationMs": 30_000, "tts": {"alerts": True}}})
    page = open_overlay("alerts", token)
    frames = list(live.streak(XIAOMING, 4, name="Galaxy", diamonds=1000))
    live.publish(frames[0])
    wait(page, "document.querySelector('.alert-what')?.textContent === 'sent Galaxy ×1'")
    overlay_shot(page, "overlay-alerts-streak")
    live.publish(*frames[1:3])
    wait(page, "document.querySelector('.alert-what')?.textContent === 'sent Galaxy ×3'")
    assert page.get_attribute(".alert", "data-final") == "0"
    live.publish(frames[3])
    wait(page, "document.querySelector('.alert')?.dataset.final === '1'")
    assert page.inner_text(".alert-coins") == "4,000 coins"
    [gift] = page.evaluate("window.__alerts.seen")
    assert gift["texts"][0] == "sent Galaxy ×1"
    assert gift["texts"][-1] == "sent Galaxy ×4"
    cancels = page.evaluate("window.__tts.cancels")

    page.keyboard.press("Escape")  # the default skip key
    wait(page, "!document.querySelector('.alert')", 5)
    assert page.evaluate("window.__tts.cancels") == cancels + 1

    live.publish(live.follow(ZOE))
    wait(page, "document.querySelector('.alert')?.dataset.kind === 'follow'")
    studio.call("POST", f"/overlays/tokens/{token['id']}/skip")  # the UI's skip button
    wait(page, "!document.querySelector('.alert')", 10)
    assert page.evaluate("window.__tts.cancels") == cancels + 2
    assert page.evaluate("window.__alerts.maxVisible") == 1


# -- chat ------------------------------------------------------------------------------------------
def chat_lines(page: Any) -> list[tuple[list[str], str, str]]:
    """Each line: its badges, the name, the message's text."""
    lines = page.evaluate(
        "[...document.querySelectorAll('.chat-msg')].map((li) => ["
        "[...li.querySelectorAll('.chat-badge')].map((b) => b.textContent),"
        " li.querySelector('.chat-name').textContent, li.querySelector('.chat-text').textContent])"
    )
    return [(badges, name, text) for badges, name, text in lines]


def test_chat_shows_the_last_messages_with_badges_emotes_and_banned_words_masked(
    studio: Studio, live: LiveSession, open_overlay: Callable[..., Any]
) -> None:
    token = studio.token("chat")
    studio.options(
        token, {"common": {"bannedWords": ["darn"]}, "chat": {"maxMessages": 3, "fontSize": 20}}
    )
    live.publish(live.chat(OWL, "before the overlay opened"), live.chat(AKHMED, "me too"))
    studio.wait_state(token, "chat", live.session, lambda s: len(s["recent"]) == 2)
    page = open_overlay("chat", token)
    assert chat_lines(page) == [
        ([], OWL.display_name, "before the overlay opened"),
        (["MOD"], AKHMED.display_name, "me too"),
    ]
    emote = "https://p16-sign-va.tiktokcdn.com/webcast-va/emote_{}~tplv-resize:100:100.webp"
    message = "<b>so</b> [cat_dance] good [heart_eyes]"
    live.publish(
        live.chat(
            ZOE,
            message,
            emotes=[
                {
                    "emoteId": "1",
                    "emoteImageUrl": emote.format("cat"),
                    "placeholderIndex": message.index("[cat_dance]"),
                },
                {
                    "emoteId": "2",
                    "emoteImageUrl": emote.format("heart"),
                    "placeholderIndex": message.index("[heart_eyes]"),
                },
            ],
        ),
        live.follow(OWL),  # not a chat line
        live.chat(AKHMED, "oh DARN it"),
        live.chat(XIAOMING, "加油"),
    )
    wait(page, "document.querySelector('.chat-msg:last-child')?.textContent.includes('加油')")
    assert chat_lines(page) == [
        (["Lv12"], ZOE.display_name, "<b>so</b>  good "),
        (["MOD"], AKHMED.display_name, "oh **** it"),
        (["SUB"], XIAOMING.display_name, "加油"),
    ]
    first = page.locator(".chat-msg").nth(0)
    # Each [placeholder] is its emote's picture, in place.
    assert first.locator(".chat-text").evaluate(
        "(el) => [...el.childNodes].map((n) => n.nodeName === 'IMG' ? n.src : n.textContent)"
    ) == ["<b>so</b> ", emote.format("cat"), " good ", emote.format("heart")]
    assert first.locator("b").count() == 0  # the message's HTML is text, never markup
    assert page.evaluate("getComputedStyle(document.querySelector('.chat-list')).fontSize") == (
        "20px"
    )
    overlay_shot(page, "overlay-chat")


# -- leaderboard -----------------------------------------------------------------------------------
def board(page: Any) -> list[tuple[str, int]]:
    rows = page.evaluate(
        "[...document.querySelectorAll('.board-row')].map((r) => "
        "[r.querySelector('.board-name').textContent, r.querySelector('.board-coins').textContent])"
    )
    return [(name, int("".join(c for c in coins if c.isdigit()))) for name, coins in rows]


def test_the_leaderboard_starts_from_the_state_and_counts_each_streak_once(
    studio: Studio, live: LiveSession, open_overlay: Callable[..., Any]
) -> None:
    token = studio.token("leaderboard")
    studio.options(token, {"leaderboard": {"count": 3}})
    live.publish(live.gift(OWL, diamonds=1), *live.streak(ZOE, 2, diamonds=1000))
    studio.wait_state(token, "leaderboard", live.session, lambda s: len(s["leaderboard"]) == 2)
    page = open_overlay("leaderboard", token)
    assert board(page) == [(ZOE.display_name, 2000), (OWL.display_name, 1)]
    live.publish(*live.streak(XIAOMING, 5, diamonds=1000), live.gift(AKHMED, diamonds=500))
    expected = [(XIAOMING.display_name, 5000), (ZOE.display_name, 2000), (AKHMED.display_name, 500)]
    wait(
        page,
        f"document.querySelectorAll('.board-row').length === 3 && "
        f"document.querySelector('.board-row:last-child .board-name').textContent === "
        f"{json.dumps(AKHMED.display_name)}",
    )
    # 5,000: the streak's total once, not the sum of its frames (15,000).
    assert board(page) == expected
    overlay_shot(page, "overlay-leaderboard")
    # What the page worked out equals what the server counts.
    state = studio.state(token, "leaderboard")
    assert [(r["displayName"], r["coins"]) for r in state["leaderboard"]] == expected


# -- goal ------------------------------------------------------------------------------------------
def test_the_goal_counts_its_metric_and_follows_an_option_change_at_once(
    studio: Studio, live: LiveSession, open_overlay: Callable[..., Any]
) -> None:
    token = studio.token("goal")
    studio.options(token, {"goal": {"metric": "likes", "target": 100, "title": "Tap tap"}})
    live.publish(live.like(ZOE, 15, 15), live.like(OWL, 5, 20))
    studio.wait_state(token, "goal", live.session, lambda s: s["goal"]["current"] == 20)
    page = open_overlay("goal", token)
    assert page.inner_text(".goal-title") == "Tap tap"
    assert page.inner_text(".goal-count") == "20 / 100"
    live.publish(live.like(ZOE, 30, 50), live.follow(OWL))
    wait(page, "document.querySelector('.goal-count').textContent === '50 / 100'")
    wait(
        page,
        "getComputedStyle(document.querySelector('.goal-fill')).transform"
        " === 'matrix(0.5, 0, 0, 1, 0, 0)'",
    )
    overlay_shot(page, "overlay-goal")

    version = int(page.evaluate("document.body.dataset.optionsVersion"))
    studio.options(token, {"goal": {"metric": "follows", "target": 2, "title": ""}})
    wait(page, f"document.body.dataset.optionsVersion === '{version + 1}'")
    assert page.inner_text(".goal-title") == "Follows goal"
    assert page.inner_text(".goal-count") == "1 / 2"  # the follow above
    assert page.get_attribute(".goal", "data-reached") == "0"
    live.publish(live.follow(ZOE))
    wait(page, "document.querySelector('.goal').dataset.reached === '1'")
    assert page.inner_text(".goal-count") == "2 / 2"


# -- ticker ----------------------------------------------------------------------------------------
def ticker_items(page: Any) -> list[str]:
    items: list[str] = page.evaluate(
        "[...document.querySelectorAll('.ticker-run:first-child .tick')].map((t) => "
        "t.querySelector('.tick-who').textContent + ' '"
        " + t.querySelector('.tick-text').textContent)"
    )
    return items


def test_the_ticker_scrolls_the_latest_follows_and_completed_gifts(
    studio: Studio, live: LiveSession, open_overlay: Callable[..., Any]
) -> None:
    token = studio.token("ticker")
    studio.options(token, {"ticker": {"kinds": ["FOLLOW", "GIFT"], "count": 3, "speedPxPerS": 400}})
    studio.wait_state(token, "ticker", live.session)
    page = open_overlay("ticker", token)
    assert page.get_attribute(".ticker", "data-empty") == "1"
    live.publish(
        live.follow(ZOE),
        *live.streak(XIAOMING, 3, name="Galaxy", diamonds=1000),
        live.chat(OWL, "not a ticker kind"),
        live.follow(OWL),
        live.follow(AKHMED),
    )
    expected = [
        f"{AKHMED.display_name} followed",
        f"{OWL.display_name} followed",
        f"{XIAOMING.display_name} Galaxy ×3",
    ]
    # New items join at the end of a loop (no jump mid-scroll): wait for them.
    deadline = time.monotonic() + 30
    while ticker_items(page) != expected:
        assert time.monotonic() < deadline, f"ticker shows {ticker_items(page)}"
        page.wait_for_timeout(200)
    track = page.evaluate(
        "(() => { const t = document.querySelector('.ticker-track'); const s = getComputedStyle(t);"
        " return { name: s.animationName, seconds: parseFloat(s.animationDuration),"
        " run: parseFloat(t.style.getPropertyValue('--run')) }; })()"
    )
    assert track["name"] == "ticker-scroll"
    assert track["seconds"] == pytest.approx(max(1.0, track["run"] / 400), rel=0.01)
    overlay_shot(page, "overlay-ticker")


# -- revocation ------------------------------------------------------------------------------------
def test_a_revoked_token_clears_its_open_overlays_within_seconds(
    studio: Studio, live: LiveSession, open_overlay: Callable[..., Any]
) -> None:
    token = studio.token("to revoke")
    alerts = open_overlay("alerts", token)
    chat = open_overlay("chat", token)
    live.publish(live.chat(ZOE, "still here"), live.follow(ZOE))
    wait(chat, "document.querySelectorAll('.chat-msg').length === 1")
    wait(alerts, "Boolean(document.querySelector('.alert'))")
    started = time.monotonic()
    studio.call("DELETE", f"/overlays/tokens/{token['id']}")
    for page in (alerts, chat):
        wait(
            page,
            "document.body.dataset.state === 'revoked'"
            " && document.getElementById('overlay').childElementCount === 0",
            REVOKED_WITHIN_S,
        )
    print(f"\nrevoked overlays cleared after {time.monotonic() - started:.1f} s")
    # Gone for good: the page itself is refused now.
    response = chat.goto(f"/overlay/chat?token={token['token']}")
    assert response is not None
    assert response.status in (401, 403)


# -- ttlp restarts ---------------------------------------------------------------------------------
def test_an_overlay_resumes_with_last_event_id_after_ttlp_restarts(
    tmp_path: Any, browser: Any, redis_url: str, bus: redis.Redis, chromium: Any
) -> None:
    prefix = new_key_prefix()
    env = {"REDIS_URL": redis_url, "REDIS_CONSUMER_GROUP_PREFIX": prefix, "JWT_SECRET": JWT_SECRET}
    server = start_server(tmp_path / "restart", "--roles", ROLES, extra_env=env)
    context = None
    try:
        studio = Studio(browser, server)
        token = studio.token("restart")
        live = LiveSession(bus, prefix, STREAMER)
        live.publish(live.connected(), live.chat(ZOE, "one"))
        studio.wait_state(token, "chat", live.session, lambda s: len(s["recent"]) == 1)
        studio.context.close()
        context = new_context(browser, server, SIZES["chat"])
        page = context.new_page()
        page.goto(f"/overlay/chat?token={token['token']}")
        wait(
            page,
            "document.body.dataset.feed === 'live' && "
            "document.querySelectorAll('.chat-msg').length === 1",
        )
        live.publish(live.chat(OWL, "two"))
        wait(page, "document.querySelectorAll('.chat-msg').length === 2")

        stop_server(server)
        wait(page, "document.body.dataset.feed !== 'live'")
        # While ttlp is away: on the bus only. The restarted api tails from its new end, so
        # these reach the page only by its resume after the last id it had.
        live.publish(live.chat(AKHMED, "three"), live.chat(XIAOMING, "four"))
        port = int(server.url.rsplit(":", 1)[1])
        server = start_server(
            tmp_path / "restart", "--roles", ROLES, extra_env=env, port=port, accounts=False
        )
        wait(page, "document.querySelectorAll('.chat-msg').length === 4", 45)
        live.publish(live.chat(ZOE, "five"))
        wait(page, "document.querySelectorAll('.chat-msg').length === 5")
        texts = page.locator(".chat-text").all_inner_texts()
        assert texts == ["one", "two", "three", "four", "five"]
    finally:
        if context is not None:
            context.close()
        stop_server(server)
        run_sync(delete_keys_at(redis_url, prefix))


# -- the Overlays page -----------------------------------------------------------------------------
def ui_login(browser: Any, server: Server, size: tuple[int, int]) -> tuple[Any, Any]:
    context = new_context(browser, server, size)
    context.add_init_script(SPEECH_AND_PROBES)
    page = context.new_page()
    page.goto("/")
    page.fill("input[name=username]", "streamer")
    page.fill("input[name=password]", PASSWORD)
    page.click("form#login button[type=submit]")
    page.wait_for_selector("#nav a[data-view=overlays]")
    return context, page


def preview_frame(page: Any, kind: str) -> Any:
    """The preview iframe of ``kind``, once its overlay has its state and its feed is open."""
    handle = page.wait_for_selector(f"iframe#overlay-preview[src*='/overlay/{kind}?']")
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_load_state()
    ready = "document.body?.dataset.state === 'ready' && document.body.dataset.feed === 'live'"
    wait_until(frame, f"location.pathname === '/overlay/{kind}' && {ready}")
    return frame


def test_the_overlays_page_builds_a_link_whose_preview_follows_its_options(
    browser: Any, overlay_server: Server, bus: redis.Redis, bus_env: dict[str, str], tmp_path: Any
) -> None:
    context, page = ui_login(browser, overlay_server, (1400, 900))
    try:
        page.click("#nav a[data-view=overlays]")
        page.wait_for_selector("#overlay-create")
        name = "Main scene"
        page.fill("#overlay-create input[name=name]", name)
        page.fill("#overlay-create input[name=streamer]", STREAMER)
        page.click("#overlay-create button[type=submit]")
        row = page.locator("table.overlay-tokens tr", has_text=name)
        row.wait_for()
        token_id = row.get_attribute("data-token")
        page.wait_for_selector("#overlay-editor")
        url = page.input_value(".overlay-link")
        assert url.startswith(f"{overlay_server.url}/overlay/alerts?token=")

        # The goal: its URL, its preview, an option saved → the preview follows.
        page.click(".kind-tab[data-kind=goal]")
        wait(page, "document.querySelector('.overlay-link').value.includes('/overlay/goal?token=')")
        frame = preview_frame(page, "goal")
        assert "preview=1" in frame.url
        assert frame.inner_text(".goal-count").endswith("/ 1,000")
        page.fill("input[name='goal.target']", "7")
        page.fill("input[name='goal.title']", "Seven follows")
        page.select_option("select[name='goal.metric']", "follows")
        page.click("button.save-options")
        wait_until(frame, "document.querySelector('.goal-count').textContent.endsWith('/ 7')")
        assert frame.inner_text(".goal-title") == "Seven follows"
        saved = page.evaluate(f"fetch('/overlays/tokens/{token_id}/options').then((r) => r.json())")
        assert saved["goal"] == {"metric": "follows", "target": 7, "title": "Seven follows"}
        page.evaluate("document.getElementById('overlay-editor').scrollIntoView()")
        screenshot(page, "overlays-page-goal")

        # The chat preview shows replays too (OBS would not).
        page.click(".kind-tab[data-kind=chat]")
        frame = preview_frame(page, "chat")
        replay = LiveSession(bus, bus_env["REDIS_CONSUMER_GROUP_PREFIX"], STREAMER, source="replay")
        replay.publish(replay.connected(), replay.chat(OWL, "from a replay"))
        wait_until(
            frame,
            "document.querySelector('.chat-msg:last-child')?.textContent.includes('from a replay')",
        )
        assert frame.get_attribute(".chat-msg:last-child", "data-source") == "replay"  # marked
        page.evaluate("document.querySelector('.preview-box').scrollIntoView({ block: 'end' })")
        screenshot(page, "overlays-page-chat-preview")

        # A sound uploaded here is offered to the alerts of this streamer.
        sound = tmp_path / "whoosh.wav"
        sound.write_bytes(silent_wav())
        page.fill("input[name=soundName]", "whoosh")
        page.set_input_files("input[name=soundFile]", str(sound))
        page.click("#sound-upload button[type=submit]")
        page.locator("table.overlay-sound-list tr", has_text="whoosh").wait_for()
        page.click(".kind-tab[data-kind=alerts]")
        offered = page.locator("select[name='alerts.sounds.follow'] option").all_inner_texts()
        assert "whoosh" in offered
        page.evaluate("window.scrollTo(0, 0); document.getElementById('main').scrollTo(0, 0)")
        screenshot(page, "overlays-page")

        # Usable on a phone: nothing wider than the screen.
        page.set_viewport_size({"width": 390, "height": 844})
        page.click(".kind-tab[data-kind=goal]")
        preview_frame(page, "goal")
        overflow = page.evaluate(
            "[document.documentElement.scrollWidth, document.getElementById('main').scrollWidth]"
        )
        assert max(overflow) <= 390, overflow
        screenshot(page, "overlays-page-390")
        page.evaluate("document.getElementById('overlay-editor').scrollIntoView()")
        screenshot(page, "overlays-page-390-editor")

        # Revoke asks first, then the link is marked revoked and its editor closes.
        page.set_viewport_size({"width": 1400, "height": 900})
        row.locator("button.revoke").click()
        assert row.locator("button.revoke").inner_text() == "Really revoke?"
        row.locator("button.revoke").click()
        wait(
            page,
            f"document.querySelector('tr[data-token=\"{token_id}\"] .status')"
            ".textContent.startsWith('revoked')",
        )
        assert row.locator("button").count() == 0
    finally:
        context.close()


# -- frame time under load -------------------------------------------------------------------------
def load_mix(live: LiveSession, rng: random.Random, viewers: list[Viewer]) -> str:
    """One event of a busy stream: mostly chat and likes, some joins, gifts, follows."""
    who = rng.choice(viewers)
    roll = rng.random()
    if roll < 0.55:
        return live.chat(who, f"message {rng.randrange(10**6)} from {who.unique_id}")
    if roll < 0.75:
        return live.like(who, rng.randint(1, 15), rng.randint(1, 10**6))
    if roll < 0.85:
        return live.join(who)
    if roll < 0.93:
        return live.gift(who, diamonds=rng.choice([1, 5, 99]))
    if roll < 0.97:
        return live.follow(who)
    return live.share(who)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


@pytest.mark.parametrize("kind", ["alerts", "chat"])
def test_frame_time_at_10000_events_per_minute(
    kind: str, studio: Studio, live: LiveSession, open_overlay: Callable[..., Any]
) -> None:
    token = studio.token(f"load {kind}")
    studio.options(token, {"alerts": {"durationMs": 2000, "tts": {"alerts": True, "chat": True}}})
    page = open_overlay(kind, token)
    page.evaluate(FRAME_PROBE)
    rng = random.Random(15)
    viewers = [
        Viewer(str(7100000000000000000 + i), f"viewer.{i}", f"Viewer {i}") for i in range(500)
    ]
    total = int(LOAD_RATE * LOAD_S)
    done = threading.Event()

    def publish() -> None:
        started = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * LOAD_RATE) + 1)
            if due > sent:
                live.publish(*(load_mix(live, rng, viewers) for _ in range(due - sent)))
                sent = due
            time.sleep(0.02)
        done.set()

    before = page.evaluate("window.ttlpOverlay.received")
    started = time.monotonic()
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    assert done.wait(LOAD_S * 3), "the publisher fell behind"
    elapsed = time.monotonic() - started
    wait(page, f"window.ttlpOverlay.received - {before} >= {total}", 60)
    probe = page.evaluate("window.__probe")
    received = page.evaluate("window.ttlpOverlay")
    overlay_shot(page, f"overlay-{kind}-under-load")
    gaps = probe["gaps"][1:]
    long_tasks = probe["longTasks"]
    longest = f" (max {max(long_tasks):.0f} ms)" if long_tasks else ""
    print(
        f"\n{kind} overlay at {total / elapsed * 60:,.0f} events/min ({total} events in "
        f"{elapsed:.1f} s, {received['batches']} batches): frame gap p50 "
        f"{percentile(gaps, 0.5):.1f} ms, p95 {percentile(gaps, 0.95):.1f} ms, p99 "
        f"{percentile(gaps, 0.99):.1f} ms, max {max(gaps):.1f} ms, frames > 50 ms: "
        f"{sum(g > 50 for g in gaps)} of {len(gaps)}; long tasks {len(long_tasks)}"
        f"{longest}; max DOM nodes {probe['nodes']}"
    )
    # Bounded whatever the rate: a capped chat list, one alert card.
    assert probe["nodes"] < 400
    if kind == "chat":
        assert page.locator(".chat-msg").count() == 20
    else:
        assert page.locator(".alert").count() <= 1
