"""The api role in a real ``ttlp run`` on Redis + PostgreSQL: an account made with the CLI logs
in over HTTP, follows the live feed of the mock stream over SSE, reads history, triggers a
replay, and SIGTERM ends the process cleanly while a feed is still open."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest

from tests.support.processes import Ttlp
from tests.support.wait import free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HANDLE = "luna.beats"
PASSWORD = "moderator password 1"


def add_account(ttlp: Ttlp, name: str, role: str) -> None:
    args = ["accounts", "add", name, "--role", role, "--scope", HANDLE, "--password-stdin"]
    made = ttlp.run(*args, timeout=60, stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr


async def read_sse(response: httpx.Response, wanted: int) -> list[dict[str, Any]]:
    """Parse SSE messages off a streaming response until ``wanted`` events arrived."""
    events: list[dict[str, Any]] = []
    message: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if message.get("event") == "event":
                events.append({"id": message["id"], **json.loads(message["data"])})
                if len(events) >= wanted:
                    return events
            message = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(": ")
        message[field] = value
    return events


def processed(metrics: str, role: str) -> float:
    """``ttlp_events_processed_total`` of ``role`` (all its groups) in a scrape."""
    total = 0.0
    for line in metrics.splitlines():
        mine = f'role="{role}"' in line and 'outcome="processed"' in line
        if line.startswith("ttlp_events_processed_total{") and mine:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_login_feed_history_replay_and_clean_stop(services: Ttlp) -> None:
    add_account(services, "mod", "MODERATOR")
    add_account(services, "owner", "STREAMER")
    port = services.env["API_PORT"]
    proc = services.start("run", "--roles", "all", "--rate", "40", "--loop")
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def healthy() -> bool:
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(healthy, what="GET /health 200", alive=proc)
        login = await client.post("/auth/login", json={"username": "mod", "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['token']}"}

        async with client.stream(
            "GET", f"/streams/@{HANDLE}/events?types=CHAT,GIFT", headers=headers
        ) as feed:
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("text/event-stream")
            live = await read_sse(feed, 10)
        assert {e["eventType"] for e in live} <= {"CHAT", "GIFT"}
        ids = [tuple(map(int, e["id"].split("-"))) for e in live]
        assert ids == sorted(ids)

        # The feed tails the bus, so an event can be on SSE before the store role commits it:
        # wait until history has it rather than expect it there already.
        session_id = live[0]["sessionId"]

        async def in_history() -> bool:
            cursor: str | None = None
            while True:  # the whole session, page by page: the loop keeps adding to it
                params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
                page = await client.get(
                    f"/sessions/{session_id}/events", params=params, headers=headers
                )
                if page.status_code == 404:  # the session row is not committed yet either
                    return False
                assert page.status_code == 200, page.text
                body = page.json()
                if live[0]["eventId"] in {e["eventId"] for e in body["items"]}:
                    return True
                cursor = body["nextCursor"]
                if cursor is None:
                    return False

        await wait_for(in_history, what="the first live event in history", poll=0.1, alive=proc)

        # A moderator may not replay; the streamer may.
        refused = await client.post(f"/sessions/{session_id}/replay", headers=headers)
        assert refused.status_code == 403
        owner = await client.post("/auth/login", json={"username": "owner", "password": PASSWORD})
        owner_headers = {"Authorization": f"Bearer {owner.json()['token']}"}
        accepted = await client.post(f"/sessions/{session_id}/replay", headers=owner_headers)
        assert accepted.status_code == 202, accepted.text
        replay_id = accepted.json()["sessionId"]

        async def replay_stored() -> bool:
            got = await client.get(f"/sessions/{replay_id}", headers=owner_headers)
            return got.status_code == 200 and got.json()["eventCount"] > 0

        await wait_for(replay_stored, what="the replayed session in history", alive=proc)
        replayed = await client.get(f"/sessions/{replay_id}/events?limit=5", headers=headers)
        assert {e["source"] for e in replayed.json()["items"]} == {"replay"}

        # /metrics has the consume loops of every role in this process (``--roles all``).
        scraped = (await client.get("/metrics")).text
        for role in ("normalizer", "store", "rules", "forwarder"):
            assert processed(scraped, role) > 0, role
        assert any(
            line.startswith("ttlp_batch_seconds_count{") and 'role="store"' in line
            for line in scraped.splitlines()
        )

        # SIGTERM with a feed still open: the feed ends and the process exits 0.
        async with client.stream("GET", f"/streams/@{HANDLE}/events", headers=headers) as feed:
            assert feed.status_code == 200
            proc.send_signal(signal.SIGTERM)
            async for _ in feed.aiter_lines():
                pass  # the server closes the stream as it stops
    assert proc.wait(30) == 0, services.log_of(proc)[-3000:]
    assert "Traceback" not in services.log_of(proc)


async def test_a_process_without_the_api_serves_its_metrics_on_metrics_port(
    services: Ttlp,
) -> None:
    port = free_port()
    proc = services.start(
        "run",
        "--roles",
        "ingest,normalize,store",
        "--rate",
        "40",
        "--loop",
        METRICS_PORT=str(port),
        API_HOST="127.0.0.1",
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

        async def counted() -> bool:
            try:
                scraped = (await client.get("/metrics")).text
            except httpx.TransportError:
                return False
            return processed(scraped, "normalizer") > 0 and processed(scraped, "store") > 0

        await wait_for(counted, what="normalizer and store figures on METRICS_PORT", alive=proc)
        scraped = (await client.get("/metrics")).text
    assert processed(scraped, "rules") == 0  # not a role of this process
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, services.log_of(proc)[-3000:]
