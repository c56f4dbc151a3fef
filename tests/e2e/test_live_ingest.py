"""`ttlp run` with the direct provider against a local TikTok, as separate processes:
the whole pipeline from TikTok's push WebSocket to rows, and two ingest replicas sharing three
streamers — each held by exactly one, a killed replica's streamers taken over."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fakes.tiktok import AKHMED, ZOE, FakeTikTok, Messages, Script, Send
from tests.support.processes import Ttlp
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LEASE_MS = 1500


def live_env(
    ttlp: Ttlp, tiktok: FakeTikTok, redis_url: str, database_url: str, handles: str
) -> None:
    ttlp.env.update(
        {
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "INGEST_PROVIDER": "direct",
            "TIKTOK_UNIQUE_ID": handles,
            "SIGN_API_URL": tiktok.url,
            "SIGN_API_KEY": "sign-secret-42",
            "TIKTOK_APP_URL": tiktok.url,
            "TIKTOK_WEBCAST_URL": f"{tiktok.url}/webcast",
            "INGEST_LEASE_MS": str(LEASE_MS),
            "INGEST_POLL_INTERVAL_S": "0.5",
        }
    )
    migrated = ttlp.run("migrate")
    assert migrated.returncode == 0, migrated.stderr


async def test_live_show_from_tiktok_to_rows(
    ttlp: Ttlp,
    fake_tiktok: FakeTikTok,
    redis_url: str,
    database_url: str,
    engine: AsyncEngine,
) -> None:
    m = Messages()
    show = [
        m.viewers(1200, 5400),
        m.chat(ZOE, "hi Luna 👋"),
        m.follow(AKHMED),
        m.gift(ZOE, gift_id=5655, name="Galaxy", diamonds=200, repeat=1, end=False),
        m.gift(ZOE, gift_id=5655, name="Galaxy", diamonds=200, repeat=5, end=True),
        m.like(AKHMED, 15, 48213),
        m.share(ZOE),
        m.control(3),
    ]
    fake_tiktok.room(scripts=[Script(initial=show[:2], steps=[Send.result(show[2:], log_id=1)])])
    live_env(ttlp, fake_tiktok, redis_url, database_url, "luna.beats")
    proc = ttlp.start("run", "--roles", "all")

    async def stored() -> list[str]:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT event_type FROM events ORDER BY id"))
            types = list(rows.scalars())
        return types if "DISCONNECTED" in types else []

    types = await wait_for(stored, what="the show stored", alive=proc, timeout=60)
    assert Counter(types) == Counter(
        {
            "CONNECTED": 1,
            "ROOM_USER": 1,
            "CHAT": 1,
            "FOLLOW": 1,
            "GIFT": 2,
            "LIKE": 1,
            "SHARE": 1,
            "STREAM_END": 1,
            "DISCONNECTED": 1,
        }
    )
    async with engine.connect() as conn:
        gift = (
            await conn.execute(
                text(
                    "SELECT event_data FROM events WHERE event_type = 'GIFT' "
                    "ORDER BY id DESC LIMIT 1"
                )
            )
        ).scalar_one()
    gift = gift if isinstance(gift, dict) else json.loads(gift)
    assert (gift["payload"]["coins"], gift["payload"]["streakEnd"]) == (1000, True)
    assert await asyncio.to_thread(ttlp.stop, proc) == 0
    log = ttlp.log_of(proc)
    assert "sign-secret-42" not in log
    assert "Traceback" not in log


async def test_two_replicas_share_three_streamers_and_take_over_a_dead_ones(
    ttlp: Ttlp,
    fake_tiktok: FakeTikTok,
    redis_url: str,
    database_url: str,
    redis: aioredis.Redis,
    key_prefix: str,
) -> None:
    handles = ("alice", "bob", "carol")
    for i, handle in enumerate(handles):
        m = Messages(room_id=7441234567890123000 + i)
        # Each connection says hello and then stays open until the client goes away.
        fake_tiktok.room(
            handle,
            7441234567890123000 + i,
            scripts=[Script(initial=[m.chat(ZOE, f"hello {handle}")])],
        )
    live_env(ttlp, fake_tiktok, redis_url, database_url, ",".join(handles))
    a = ttlp.start("run", "--roles", "ingest", CONSUMER_NAME="replica-a")
    b = ttlp.start("run", "--roles", "ingest", CONSUMER_NAME="replica-b")

    async def holders() -> dict[str, str]:
        found = {h: await redis.get(f"{key_prefix}ttlc:lease:{h}") for h in handles}
        return found if all(found.values()) else {}

    async def connected_once() -> bool:
        return all(fake_tiktok.rooms[h].connections >= 1 for h in handles)

    await wait_for(connected_once, what="every streamer connected", alive=a, timeout=30)
    held = await wait_for(holders, what="three leases", alive=a)
    # Each streamer is connected by exactly one replica: one connection and one CONNECTED each.
    # The replica publishes CONNECTED after TikTok accepted the socket, so the frames can trail
    # the connection count: wait for them.
    assert all(fake_tiktok.rooms[h].connections == 1 for h in handles)
    await wait_for(
        lambda: _connected_frames_are(redis, key_prefix, Counter(handles)),
        what="one CONNECTED frame per streamer",
        timeout=15,
        poll=0.1,
    )

    # Kill one replica that holds at least one streamer; the other takes them over.
    victim, survivor = (
        (a, "replica-b")
        if any(v.startswith("replica-a") for v in held.values())
        else (b, "replica-a")
    )
    moving = [h for h, owner in held.items() if not owner.startswith(survivor)]
    victim.send_signal(signal.SIGKILL)
    await asyncio.to_thread(victim.wait, 10)

    async def taken_over() -> bool:
        owners = await holders()
        return bool(owners) and all(o.startswith(survivor) for o in owners.values())

    await wait_for(
        taken_over, what="the survivor holding every lease", timeout=LEASE_MS / 1000 * 4, poll=0.1
    )
    await wait_for(
        lambda: all(fake_tiktok.rooms[h].connections == 2 for h in moving),
        what="the moved streamers reconnected",
        timeout=15,
    )
    await wait_for(
        lambda: _connected_frames_are(redis, key_prefix, Counter(handles) + Counter(moving)),
        what="a second CONNECTED frame for each moved streamer",
        timeout=15,
        poll=0.1,
    )
    survivor_proc = b if survivor == "replica-b" else a
    # Stopped from a thread: the fake TikTok lives on this event loop and must answer the
    # WebSocket close handshakes while the process shuts down.
    assert await asyncio.to_thread(ttlp.stop, survivor_proc) == 0


async def _connected_frames_are(redis: aioredis.Redis, prefix: str, expected: Counter[str]) -> bool:
    """Whether the CONNECTED frames on ``ttlc:raw`` are exactly ``expected`` (per handle).

    Fails at once on more than expected: a frame never disappears, so waiting cannot help."""
    entries = await redis.xrange(f"{prefix}ttlc:raw")
    got = Counter(f["uniqueId"] for _, f in entries if f["type"] == "ControlEvent.CONNECTED")
    assert not got - expected, f"CONNECTED frames {dict(got)}, expected {dict(expected)}"
    return got == expected
