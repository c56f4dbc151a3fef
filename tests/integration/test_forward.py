"""The forwarder against local receivers, on both backends (in-process bus + SQLite, Redis +
PostgreSQL): targets API, signed deliveries, retries that do not hold up other targets, the
DLQ after the last attempt, ``dlq retry``, restart, and SSRF refusals.

Receivers listen on 127.0.0.1, allow-listed through WEBHOOK_ALLOWLIST; the back-off is shrunk
through the Forwarder's constructor so retries take milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import time

import msgspec
import pytest

from tests.fakes.receiver import Receiver, Reply, Request
from tests.support.api import STREAMER_HANDLE, ApiHarness
from tests.support.forwarding import ALLOW_LOOPBACK, WAIT_S, Rig, create_target, events
from tests.support.wait import wait_for
from ttlp.aio import Backoff
from ttlp.api.accounts import Role
from ttlp.bus import dlq
from ttlp.forward.dispatcher import RETRY_BASE_S, RETRY_JITTER, RETRY_MAX_S
from ttlp.forward.outbound import Outbound, OutboundError
from ttlp.forward.signing import verify
from ttlp.forward.store import ForwardStore
from ttlp.settings import OutboundSettings


@pytest.fixture
def api_env(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", ALLOW_LOOPBACK))


async def seed_stream(api: ApiHarness) -> None:
    """The store has seen the fixture room, so its streamer (the targets' scope) is known."""
    await api.seed(events(1, "CONNECTED"))


# -- back-off ------------------------------------------------------------------------------------
def test_retry_delay_doubles_from_500_ms_to_30_s_with_jitter() -> None:
    for attempts, expected in [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (20, 30.0)]:
        backoff = Backoff(initial_s=RETRY_BASE_S, max_s=RETRY_MAX_S, jitter=RETRY_JITTER)
        delays = [backoff.delay(attempts) for _ in range(200)]
        assert all(expected * 0.8 <= d <= expected * 1.2 for d in delays), attempts
        assert max(delays) - min(delays) > 0  # jittered
    assert (RETRY_BASE_S, RETRY_MAX_S) == (0.5, 30.0)


# -- targets API ---------------------------------------------------------------------------------
async def test_target_crud_returns_the_secret_once_and_counts(api: ApiHarness) -> None:
    headers = await api.login("boss", Role.STREAMER, [STREAMER_HANDLE])
    created = await create_target(api, "https://hooks.example.com/in", eventTypes=["GIFT"])
    assert len(created["secret"]) >= 32
    assert created["eventTypes"] == ["GIFT"]
    assert created["counts"] == {"delivered": 0, "retried": 0, "deadLettered": 0, "pending": 0}
    tid = created["id"]

    one = (await api.client.get(f"/forward/targets/{tid}", headers=headers)).json()
    assert "secret" not in one
    listed = (await api.client.get("/forward/targets", headers=headers)).json()
    assert [t["id"] for t in listed] == [tid]
    assert "secret" not in listed[0]

    body = {"name": "renamed", "url": "https://hooks.example.com/v2", "scope": "@luna.beats"}
    replaced = await api.client.put(f"/forward/targets/{tid}", json=body, headers=headers)
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["name"], replaced.json()["eventTypes"]) == ("renamed", [])
    row = await ForwardStore(api.engine).target_row(tid)
    assert row is not None
    assert row.secret == created["secret"]  # kept: the replace gave no new one

    response = await api.client.delete(f"/forward/targets/{tid}", headers=headers)
    assert response.status_code == 204
    missing = await api.client.get(f"/forward/targets/{tid}", headers=headers)
    assert missing.status_code == 404


async def test_target_scope_outside_the_account_is_forbidden(api: ApiHarness) -> None:
    headers = await api.login("boss", Role.STREAMER, [STREAMER_HANDLE])
    for scope in ("other.streamer", "*"):
        body = {"name": "x", "url": "https://example.com/", "scope": scope}
        response = await api.client.post("/forward/targets", json=body, headers=headers)
        assert response.status_code == 403, scope


@pytest.mark.parametrize("api_env", [{}], indirect=True)
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://metadata.google.internal/",
        "file:///etc/passwd",
    ],
)
async def test_target_urls_inside_the_network_are_refused_at_creation(
    api: ApiHarness, url: str
) -> None:
    headers = await api.login("boss", Role.STREAMER, [STREAMER_HANDLE])
    body = {"name": "x", "url": url, "scope": STREAMER_HANDLE}
    response = await api.client.post("/forward/targets", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("url: ")


# -- deliveries ----------------------------------------------------------------------------------
async def test_deliveries_are_signed_and_verify(api: ApiHarness) -> None:
    await seed_stream(api)
    async with Receiver() as rx:
        target = await create_target(api, f"{rx.url}/in", eventTypes=["CHAT"])
        sent = events(3)
        async with Rig(api) as rig:
            await rig.send([*sent, *events(1, "LIKE")])  # the LIKE does not match
            await wait_for(
                lambda: len(rx.requests) == 3, what="3 deliveries", timeout=WAIT_S, poll=0.02
            )
            await wait_for(
                lambda: _all_status(rig, "delivered", 3),
                what="rows delivered",
                timeout=WAIT_S,
                poll=0.02,
            )
    for request, event in zip(
        sorted(rx.requests, key=lambda r: r.headers["x-ttlp-event-id"]),
        sorted(sent, key=lambda e: e.event_id),
        strict=True,
    ):
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-ttlp-event-id"] == event.event_id
        assert verify(target["secret"], request.headers, request.body)
        assert not verify("another-secret-entirely", request.headers, request.body)
        assert json.loads(request.body) == json.loads(msgspec.json.encode(event))


async def test_a_failing_target_does_not_delay_another(api: ApiHarness) -> None:
    """Receiver A hangs on its first requests, then answers 500 once per event and 200 after;
    receiver B gets every event while A is still hanging."""
    await seed_stream(api)
    gate = asyncio.Event()
    seen: dict[str, int] = {}

    async def flaky(request: Request) -> Reply:
        await gate.wait()
        event_id = request.headers["x-ttlp-event-id"]
        seen[event_id] = seen.get(event_id, 0) + 1
        return Reply(500) if seen[event_id] == 1 else Reply(200)

    sent = events(6)
    async with Receiver(flaky) as a, Receiver() as b:
        target_a = await create_target(api, a.url)
        target_b = await create_target(api, b.url)
        async with Rig(api) as rig:
            await rig.send(sent)
            await wait_for(
                lambda: len(b.requests) == len(sent),
                what="B gets every event",
                timeout=WAIT_S,
                poll=0.02,
            )
            # A has requests in flight too, all hanging until the gate opens.
            await wait_for(
                lambda: bool(a.requests),
                what="A's first requests",
                timeout=WAIT_S,
                poll=0.02,
            )
            b_done = time.monotonic()
            gate.set()
            await wait_for(
                lambda: len(seen) == len(sent),
                what="A sees every event",
                timeout=WAIT_S,
                poll=0.02,
            )
            await wait_for(
                lambda: _all_status(rig, "delivered", 2 * len(sent)),
                what="delivered",
                timeout=WAIT_S,
                poll=0.02,
            )
            rows = await rig.rows()
    assert {r.headers["x-ttlp-event-id"] for r in b.requests} == {e.event_id for e in sent}
    assert all(n == 2 for n in seen.values())  # a 500, then a retry that succeeded
    assert all(r.at < b_done for r in b.requests)
    attempts = {(r["target_id"], r["attempts"]) for r in rows}
    assert attempts == {(target_a["id"], 2), (target_b["id"], 1)}


async def test_a_target_that_always_fails_ends_in_the_dlq(api: ApiHarness) -> None:
    await seed_stream(api)
    async with Receiver(lambda r: Reply(503)) as rx:
        target = await create_target(api, rx.url)
        [event] = events(1)
        async with Rig(api) as rig:
            await rig.send([event])
            await wait_for(
                lambda: _all_status(rig, "dead", 1),
                what="the delivery is dead",
                timeout=WAIT_S,
                poll=0.02,
            )
        assert len(rx.requests) == 3  # FORWARD_MAX_ATTEMPTS
    [letter] = await dlq.letters(api.bus, api.keys, stage="forwarder")
    assert letter.reason == "FORWARD_FAILED"
    assert "HTTP 503" in letter.error
    payload = json.loads(letter.payload)
    assert payload["targetId"] == str(target["id"])
    assert json.loads(payload["event"])["eventId"] == event.event_id

    headers = await api.login("boss")
    counts = (await api.client.get(f"/forward/targets/{target['id']}", headers=headers)).json()
    assert counts["counts"] == {"delivered": 0, "retried": 2, "deadLettered": 1, "pending": 0}
    metrics = (await api.client.get("/metrics")).text
    assert f'ttlp_forward_deliveries{{outcome="dead_lettered",target="{target["id"]}"}} 1.0' in (
        metrics
    )


async def test_dlq_retry_delivers_again(api: ApiHarness) -> None:
    await seed_stream(api)
    healthy = False

    def receiver(_: Request) -> Reply:
        return Reply(200) if healthy else Reply(500)

    async with Receiver(receiver) as rx:
        await create_target(api, rx.url)
        async with Rig(api) as rig:
            await rig.send(events(1))
            await wait_for(
                lambda: _all_status(rig, "dead", 1),
                what="the delivery is dead",
                timeout=WAIT_S,
                poll=0.02,
            )
            healthy = True
            result = await dlq.retry(
                api.bus,
                api.keys,
                ForwardStore(api.engine).reset,
                await dlq.letters(api.bus, api.keys),
            )
            assert (len(result.retried), result.skipped) == (1, [])
            await wait_for(
                lambda: _all_status(rig, "delivered", 1),
                what="delivered after retry",
                timeout=WAIT_S,
                poll=0.02,
            )
            [row] = await rig.rows()
    assert row["attempts"] == 1  # counted again from zero
    assert await dlq.letters(api.bus, api.keys) == []
    assert len(rx.requests) == 4


async def test_pending_deliveries_resume_after_a_restart(api: ApiHarness) -> None:
    await seed_stream(api)
    healthy = False

    def receiver(_: Request) -> Reply:
        return Reply(200) if healthy else Reply(500)

    async with Receiver(receiver) as rx:
        await create_target(api, rx.url)
        async with Rig(api) as first:
            await first.send(events(2))
            await wait_for(
                lambda: _attempted(first, 2),
                what="failed first attempts recorded",
                timeout=WAIT_S,
                poll=0.02,
            )
        rows = await first.rows()
        assert [r["status"] for r in rows] == ["pending", "pending"]
        healthy = True
        async with Rig(api) as second:  # no new event: the table alone drives it
            await wait_for(
                lambda: _all_status(second, "delivered", 2),
                what="resumed deliveries",
                timeout=WAIT_S,
                poll=0.02,
            )


# -- SSRF at delivery time -----------------------------------------------------------------------
async def test_a_name_resolving_to_a_private_address_is_refused(api: ApiHarness) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        if host == "evil.test":
            return ["10.0.0.1"]
        raise OutboundError(f"cannot resolve {host}")

    await seed_stream(api)
    await create_target(api, "http://evil.test/hook")
    outbound = Outbound(api.ctx.settings.outbound, resolver=resolver)
    async with Rig(api, outbound) as rig:
        await rig.send(events(1))
        await wait_for(
            lambda: _all_status(rig, "dead", 1),
            what="the delivery is refused",
            timeout=WAIT_S,
            poll=0.02,
        )
        [row] = await rig.rows()
    assert row["attempts"] == 1  # refused: no retries
    [letter] = await dlq.letters(api.bus, api.keys)
    assert (letter.stage, letter.reason) == ("forwarder", "FORWARD_REFUSED")
    assert "10.0.0.1" in letter.error


async def test_a_redirect_to_a_private_address_is_refused(api: ApiHarness) -> None:
    await seed_stream(api)
    redirect = Reply(307, b"", {"location": "http://169.254.169.254/latest/meta-data/"})
    async with Receiver(lambda r: redirect) as rx:
        await create_target(api, rx.url)
        async with Rig(api) as rig:
            await rig.send(events(1))
            await wait_for(
                lambda: _all_status(rig, "dead", 1),
                what="the delivery is refused",
                timeout=WAIT_S,
                poll=0.02,
            )
    assert len(rx.requests) == 1
    [letter] = await dlq.letters(api.bus, api.keys)
    assert letter.reason == "FORWARD_REFUSED"
    assert "metadata" in letter.error


async def test_loopback_not_allow_listed_is_refused_at_delivery(api: ApiHarness) -> None:
    """A target written before the allowlist changed is still checked at each delivery."""
    await seed_stream(api)
    async with Receiver() as rx:
        await create_target(api, rx.url)
        strict = Outbound(OutboundSettings())
        async with Rig(api, strict) as rig:
            await rig.send(events(1))
            await wait_for(
                lambda: _all_status(rig, "dead", 1),
                what="the delivery is refused",
                timeout=WAIT_S,
                poll=0.02,
            )
        assert rx.requests == []


# -- helpers -------------------------------------------------------------------------------------
async def _attempted(rig: Rig, n: int) -> bool:
    rows = await rig.rows()
    return len(rows) == n and all(r["attempts"] >= 1 for r in rows)


async def _all_status(rig: Rig, status: str, n: int) -> bool:
    rows = await rig.rows()
    return len(rows) == n and all(r["status"] == status for r in rows)
