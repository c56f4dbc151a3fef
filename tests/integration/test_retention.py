"""Retention (``ttlp.db.retention``, DESIGN §6) on SQLite and PostgreSQL, with a clock.

The factories of ``tests.support.events`` stamp events ``t`` seconds after ``T0``; each test
runs the pruner ``as of`` a moment it chooses (``NOW`` is 100 days after ``T0``) and asserts the
rows it leaves, what every view still shows, and the report's counts. Batches are 100 rows, so
the 250-event sessions below take three batches per step.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.events import (
    OTHER_STREAM,
    STREAM,
    T0,
    chat,
    frame,
    new_session,
    user,
)
from tests.support.processes import Ttlp
from ttlp.aio import as_utc
from ttlp.contracts.events import UnifiedEvent
from ttlp.db import tables
from ttlp.db.pseudonyms import load_salt, pseudonym_handle, pseudonym_id
from ttlp.db.queries import EventFilter, Queries
from ttlp.db.retention import (
    BUSY_RETRY_S,
    LAST_PRUNE_KEY,
    MIN_BATCH,
    PRUNE_LOCK_KEY,
    STEP_KEYS,
    PruneBusyError,
    Pruner,
    PruneReport,
    last_prune,
    prune,
    prune_if_due,
)
from ttlp.db.store import Store
from ttlp.roles.store import PRUNE_RECHECK_S, PRUNE_START_DELAY_S, prune_periodically
from ttlp.settings import RetentionSettings

pytestmark = pytest.mark.integration

DAY = 86_400.0
NOW = T0 + timedelta(days=100)
"""Events at T0 are 100 days old: past the 90-day retention."""
BATCH = 100
OLD_EVENTS = 250

SETTINGS = RetentionSettings(
    event_retention_days=90,
    grace_days=7,
    actions_log_retention_days=90,
    session_retention_days=120,
    user_retention_days=120,
    batch_size=BATCH,
    pseudonym_salt="retention-test-salt",
)
KEPT_TABLES = (
    tables.events,
    tables.raw_frames,
    tables.actions_log,
    tables.forward_deliveries,
    tables.sessions,
    tables.streams,
    tables.users,
    tables.user_notes,
    tables.ttlp_meta,
)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def settings(**changes: Any) -> RetentionSettings:
    return msgspec.structs.replace(SETTINGS, **changes)


# -- the world ---------------------------------------------------------------------------------
@pytest.fixture
def store(db_engine: AsyncEngine) -> Store:
    return Store(db_engine)


@pytest.fixture
def queries(db_engine: AsyncEngine) -> Queries:
    return Queries(db_engine)


def chats(
    session: str, n: int, *, start_day: float, who: int = 1, stream: str = STREAM
) -> list[UnifiedEvent]:
    """``n`` chat messages of ``user(who)`` a second apart, from ``start_day`` days after T0
    (seqNos from the day, so sessions never collide in the live dedupe index)."""
    first = int(start_day * 10_000)
    person = user(who, name=f"Viewer {who}", avatar=f"https://p16.example/{who}.jpg")
    return [
        chat(session, first + i, who=person, t=start_day * DAY + i, stream=stream) for i in range(n)
    ]


async def write(store: Store, events: Sequence[UnifiedEvent], frames: int = 0) -> None:
    """Store ``events`` and, for the first ``frames`` of them, a raw frame at the same time."""
    await store.write_events(events)
    for event in events[:frames]:
        assert event.seq_no is not msgspec.UNSET
        seconds = (as_utc(datetime.fromisoformat(event.timestamp)) - T0).total_seconds()
        await store.archive_frames([frame(event.session_id, int(event.seq_no), t=seconds)])


async def all_rows(engine: AsyncEngine, table: Table, *where: Any) -> list[Any]:
    query = select(table).where(*where).order_by(*table.primary_key.columns)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def count(engine: AsyncEngine, table: Table, *where: Any) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)
        return int(await conn.scalar(query) or 0)


async def snapshot(engine: AsyncEngine) -> dict[str, list[Any]]:
    return {t.name: await all_rows(engine, t) for t in KEPT_TABLES}


async def insert_rows(engine: AsyncEngine, table: Table, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table), rows)


def action(n: int, user_id: str, at: datetime) -> dict[str, Any]:
    return {
        "rule_id": 1,
        "event_id": f"event-{n}",
        "session_id": "s",
        "stream_id": STREAM,
        "user_id": user_id,
        "action_type": "log",
        "status": "success",
        "created_at": at,
    }


def delivery(n: int, status: str, at: datetime) -> dict[str, Any]:
    return {
        "target_id": 1,
        "event_id": f"event-{n}",
        "event_data": "{}",
        "status": status,
        "attempts": 1,
        "next_attempt_at": at,
        "created_at": at,
        "updated_at": at,
    }


def note(user_id: str, body: str) -> dict[str, Any]:
    return {"user_id": user_id, "author": "mod", "body": body, "created_at": T0, "streamer": "s"}


# -- events and raw frames ---------------------------------------------------------------------
async def test_a_batch_that_holds_the_database_too_long_halves_the_next(
    store: Store, db_engine: AsyncEngine
) -> None:
    """Every batch here takes longer than a target of a nanosecond: 100, then MIN_BATCH (50)
    rows at a time, and the run still archives everything."""
    await write(store, chats(new_session(), OLD_EVENTS, start_day=0), frames=0)
    seen: list[tuple[str, int, int | None]] = []
    report = await prune(
        db_engine,
        SETTINGS,
        now=NOW,
        progress=lambda *step: seen.append(step),
        batch_target_s=1e-9,
    )
    assert report.rows["events.archived"] == OLD_EVENTS
    assert [done for key, done, _ in seen if key == "events.archived"] == [0, 100, 150, 200, 250]


def test_batch_size_follows_how_long_batches_take(db_engine: AsyncEngine) -> None:
    pruner = Pruner(db_engine, settings(batch_size=1000), now=NOW, batch_target_s=0.05)
    pruner._resize(0.2)  # too long: halved
    assert pruner.batch == 500
    pruner._resize(0.04)  # within the target, not much quicker: kept
    assert pruner.batch == 500
    pruner._resize(0.01)  # much quicker: grows by a quarter
    assert pruner.batch == 625
    for _ in range(10):
        pruner._resize(0.0)
    assert pruner.batch == 1000  # never past PRUNE_BATCH_SIZE
    for _ in range(20):
        pruner._resize(1.0)
    assert pruner.batch == MIN_BATCH  # never below


async def test_events_past_retention_are_archived_in_batches_and_hidden_from_every_view(
    store: Store, queries: Queries, db_engine: AsyncEngine
) -> None:
    old, recent = new_session(), new_session()
    await write(store, chats(old, OLD_EVENTS, start_day=0), frames=OLD_EVENTS)
    await write(store, chats(recent, 3, start_day=95, who=2), frames=3)
    seen: list[tuple[str, int, int | None]] = []

    report = await prune(
        db_engine,
        SETTINGS,
        now=NOW,
        progress=lambda *step: seen.append(step),
        batch_target_s=0,  # batches of exactly BATCH, however long they take here
    )

    assert report.rows["events.archived"] == OLD_EVENTS
    assert report.rows["raw_frames.archived"] == OLD_EVENTS
    assert report.total == 2 * OLD_EVENTS  # nothing else is due
    assert [s for s in seen if s[0] == "events.archived"] == [
        ("events.archived", 0, 250),
        ("events.archived", 100, 250),
        ("events.archived", 200, 250),
        ("events.archived", 250, 250),
    ]
    e, f = tables.events, tables.raw_frames
    # Still stored, marked with the run's clock; the recent session untouched.
    assert {as_utc(r.archived_at) for r in await all_rows(db_engine, e, e.c.session_id == old)} == {
        NOW
    }
    assert await count(db_engine, f, f.c.session_id == old, f.c.archived_at.is_not(None)) == 250
    assert await count(db_engine, e, e.c.archived_at.is_not(None), e.c.session_id == recent) == 0
    # ... and hidden: history, counts, analytics, user views, replay.
    page = await queries.events_page(EventFilter(session_id=old), limit=500, cursor=None)
    assert page.items == []
    everything = await queries.events_page(EventFilter(), limit=500, cursor=None)
    assert [item["sessionId"] for item in everything.items] == [recent] * 3
    assert await queries.session_event_count(old) == 0
    assert await queries.session_event_count(recent) == 3
    stats = await queries.analytics(
        session_id=None, stream_ids=None, bucket_s=86_400, since=None, until=None
    )
    assert stats["totals"] == {"CHAT": 3}
    assert [c["userId"] for c in stats["topChatters"]] == ["1002"]
    assert not await queries.user_seen_in("1001", [STREAM])
    assert (await queries.user_activity("1001", [STREAM]))["event_count"] == 0
    assert await queries.user_streamers("1001", None) == []
    assert [batch async for batch in store.iter_session_frames(old)] == []
    replayable = [frame async for batch in store.iter_session_frames(recent) for frame in batch]
    assert len(replayable) == 3


async def test_raising_the_retention_within_the_grace_brings_archived_rows_back(
    store: Store, queries: Queries, db_engine: AsyncEngine
) -> None:
    old = new_session()
    await write(store, chats(old, OLD_EVENTS, start_day=0), frames=10)
    await prune(db_engine, SETTINGS, now=NOW)

    # The same retention a day later: nothing to restore (the watermark spares the scan).
    again = await prune(db_engine, SETTINGS, now=NOW + days(1))
    assert again.rows["events.restored"] == again.rows["events.archived"] == 0
    # Raised, but not enough for T0: still archived.
    within = await prune(db_engine, settings(event_retention_days=95), now=NOW + days(2))
    assert within.rows["events.restored"] == 0
    assert await queries.session_event_count(old) == 0

    raised = await prune(db_engine, settings(event_retention_days=200), now=NOW + days(3))

    assert raised.rows["events.restored"] == OLD_EVENTS
    assert raised.rows["raw_frames.restored"] == 10
    assert raised.rows["events.deleted"] == 0
    e = tables.events
    assert await count(db_engine, e, e.c.archived_at.is_not(None)) == 0
    assert await queries.session_event_count(old) == OLD_EVENTS
    assert len([f async for batch in store.iter_session_frames(old) for f in batch]) == 10
    # Lowered again: archived again, and then deleted a grace period later.
    lowered = await prune(db_engine, SETTINGS, now=NOW + days(4))
    assert lowered.rows["events.archived"] == OLD_EVENTS
    assert lowered.rows["events.restored"] == 0


async def test_archived_rows_are_deleted_once_the_grace_period_is_over(
    store: Store, db_engine: AsyncEngine
) -> None:
    old, recent = new_session(), new_session()
    await write(store, chats(old, OLD_EVENTS, start_day=0), frames=OLD_EVENTS)
    await write(store, chats(recent, 2, start_day=95), frames=2)
    await prune(db_engine, SETTINGS, now=NOW)

    in_grace = await prune(db_engine, SETTINGS, now=NOW + days(6.9))
    assert in_grace.rows["events.deleted"] == in_grace.rows["raw_frames.deleted"] == 0
    assert await count(db_engine, tables.events) == OLD_EVENTS + 2

    over = await prune(db_engine, SETTINGS, now=NOW + days(7))

    assert over.rows["events.deleted"] == OLD_EVENTS
    assert over.rows["raw_frames.deleted"] == OLD_EVENTS
    e, f = tables.events, tables.raw_frames
    assert {r.session_id for r in await all_rows(db_engine, e)} == {recent}
    assert {r.session_id for r in await all_rows(db_engine, f)} == {recent}
    assert (await prune(db_engine, SETTINGS, now=NOW + days(8))).rows["events.deleted"] == 0


async def test_without_grace_rows_are_archived_and_deleted_in_one_run(
    store: Store, db_engine: AsyncEngine
) -> None:
    await write(store, chats(new_session(), 120, start_day=0), frames=120)

    report = await prune(db_engine, settings(grace_days=0), now=NOW)

    assert report.rows["events.archived"] == report.rows["events.deleted"] == 120
    assert report.rows["raw_frames.archived"] == report.rows["raw_frames.deleted"] == 120
    assert await count(db_engine, tables.events) == await count(db_engine, tables.raw_frames) == 0


# -- actions log, deliveries, sessions, streams --------------------------------------------------
async def test_old_rule_firings_and_finished_deliveries_are_deleted(
    db_engine: AsyncEngine,
) -> None:
    old, recent = NOW - days(91), NOW - days(89)
    await insert_rows(
        db_engine,
        tables.actions_log,
        [action(n, "1001", old) for n in range(150)] + [action(999, "1001", recent)],
    )
    await insert_rows(
        db_engine,
        tables.forward_deliveries,
        [
            delivery(1, "delivered", old),
            delivery(2, "dead", old),
            delivery(3, "pending", old),
            delivery(4, "delivered", recent),
            delivery(5, "dead", recent),
        ],
    )

    report = await prune(db_engine, SETTINGS, now=NOW)

    assert report.rows["actions_log.deleted"] == 150
    assert report.rows["forward_deliveries.deleted"] == 2
    assert [r.event_id for r in await all_rows(db_engine, tables.actions_log)] == ["event-999"]
    kept = await all_rows(db_engine, tables.forward_deliveries)
    assert [(r.event_id, r.status) for r in kept] == [
        ("event-3", "pending"),  # never deleted while it is still to be sent
        ("event-4", "delivered"),
        ("event-5", "dead"),
    ]


async def test_old_empty_sessions_then_streams_without_sessions_are_deleted(
    store: Store, db_engine: AsyncEngine
) -> None:
    s, t = tables.sessions, tables.streams
    old, recent = NOW - days(31), NOW - days(29)
    in_grace = new_session()  # old, its only event archived by this run (kept for the grace)
    with_frame = new_session()  # old, a raw frame left
    await write(store, chats(in_grace, 1, start_day=0, stream=OTHER_STREAM))
    await store.archive_frames([frame(with_frame, 1, t=95 * DAY)])

    def session(
        session_id: str, stream: str, created: datetime, ended: datetime | None
    ) -> dict[str, Any]:
        return {
            "id": session_id,
            "stream_id": stream,
            "type": "live",
            "created_at": created,
            "ended_at": ended,
        }

    async with db_engine.begin() as conn:
        await conn.execute(update(s).values(created_at=old, ended_at=None))
        await conn.execute(update(t).values(started_at=old))
    await insert_rows(
        db_engine,
        s,
        [
            session("ended-long-ago", "room-a", old - days(1), old),
            session("never-ended", "room-b", old, None),
            session("ended-recently", "room-c", old, recent),
            session("created-recently", "room-c", recent, None),
        ],
    )
    await insert_rows(
        db_engine,
        t,
        [
            {"id": "room-a", "started_at": old},
            {"id": "room-b", "started_at": old},
            {"id": "room-c", "started_at": old},
            {"id": "room-empty-old", "started_at": old},
            {"id": "room-empty-recent", "started_at": recent},
        ],
    )

    report = await prune(db_engine, settings(session_retention_days=30), now=NOW)

    assert report.rows["sessions.deleted"] == 2
    assert report.rows["streams.deleted"] == 3
    assert {r.id for r in await all_rows(db_engine, s)} == {
        in_grace,
        with_frame,
        "ended-recently",
        "created-recently",
    }
    assert {r.id for r in await all_rows(db_engine, t)} == {
        STREAM,  # with_frame's
        OTHER_STREAM,  # in_grace's
        "room-c",
        "room-empty-recent",
    }


# -- users ---------------------------------------------------------------------------------------
async def test_inactive_users_are_pseudonymized_once_their_events_are_gone(
    store: Store, queries: Queries, db_engine: AsyncEngine
) -> None:
    u, notes, a = tables.users, tables.user_notes, tables.actions_log
    await write(store, chats(new_session(), 5, start_day=0, who=1))
    await write(store, chats(new_session(), 2, start_day=95, who=2))
    await insert_rows(db_engine, notes, [note("1001", "was rude"), note("1002", "regular")])
    await insert_rows(db_engine, a, [action(1, "1001", T0)])
    before = (await all_rows(db_engine, u, u.c.user_id == "1001"))[0]
    salted = settings(pseudonym_salt=None, actions_log_retention_days=0)
    later = NOW + days(30)  # 130 days after T0: user 1 last seen past the 120 days

    waiting = await prune(db_engine, salted, now=later)  # archives their events: not yet

    assert waiting.rows["events.archived"] == 5
    assert waiting.rows["users.pseudonymized"] == 0
    assert await queries.user("1001") is not None

    done = await prune(db_engine, salted, now=later + days(7))

    assert done.rows["events.deleted"] == 5
    assert done.rows["users.pseudonymized"] == 1
    assert done.rows["user_notes.deleted"] == 1
    assert done.rows["actions_log.re-keyed"] == 1
    salt = await load_salt(db_engine, None)
    pid = pseudonym_id(salt, "1001")
    (row,) = await all_rows(db_engine, u, u.c.user_id == pid)
    assert row.unique_id == pseudonym_handle(pid)
    assert row.display_name is None
    assert row.avatar_url is None
    assert as_utc(row.pseudonymized_at) == later + days(7)
    # The counts survive.
    assert (row.event_count, row.first_seen, row.last_seen) == (
        before.event_count,
        before.first_seen,
        before.last_seen,
    )
    # The person is gone: by id, by handle, their notes; their firings are the pseudonym's.
    assert await queries.user("1001") is None
    assert await queries.user_by_handle("viewer1") is None
    assert [r.body for r in await all_rows(db_engine, notes)] == ["regular"]
    assert [r.user_id for r in await all_rows(db_engine, a)] == [pid]
    # User 2 was seen recently: untouched.
    assert (await queries.user("1002") or {})["unique_id"] == "viewer2"

    users_before = await all_rows(db_engine, u)
    again = await prune(db_engine, salted, now=later + days(8))
    assert again.rows["users.pseudonymized"] == 0
    assert await all_rows(db_engine, u) == users_before


async def test_a_user_who_returns_after_pseudonymization_is_merged_into_the_pseudonym(
    store: Store, db_engine: AsyncEngine
) -> None:
    u = tables.users
    no_grace = settings(grace_days=0, user_retention_days=90)
    await write(store, chats(new_session(), 3, start_day=0, who=1))
    await prune(db_engine, no_grace, now=T0 + days(91))
    await write(store, chats(new_session(), 4, start_day=200, who=1))
    assert await count(db_engine, u) == 2  # the pseudonym, and the real id again

    report = await prune(db_engine, no_grace, now=T0 + days(291))

    assert report.rows["users.pseudonymized"] == 1
    (row,) = await all_rows(db_engine, u)
    assert row.user_id == pseudonym_id(b"retention-test-salt", "1001")
    assert row.event_count == 7
    assert as_utc(row.first_seen) == T0
    assert as_utc(row.last_seen) == T0 + days(200) + timedelta(seconds=3)


# -- dry run, 0 = forever ------------------------------------------------------------------------
@pytest.mark.parametrize("grace", [7, 0])
async def test_a_dry_run_writes_nothing_and_counts_what_the_run_then_does(
    store: Store, db_engine: AsyncEngine, grace: int
) -> None:
    rules = settings(grace_days=grace, session_retention_days=30, user_retention_days=100)
    a_session, b_session = new_session(), new_session()
    await write(store, chats(a_session, 150, start_day=0, who=1, stream=OTHER_STREAM))
    await write(store, chats(b_session, 120, start_day=20, who=2), frames=120)
    await write(store, chats(new_session(), 3, start_day=120, who=3), frames=3)
    await insert_rows(db_engine, tables.user_notes, [note("1001", "a"), note("1003", "c")])
    await insert_rows(
        db_engine,
        tables.actions_log,
        [action(n, "1001", T0 + days(n)) for n in range(1, 60)],
    )
    await insert_rows(
        db_engine,
        tables.forward_deliveries,
        [delivery(n, "delivered", T0 + days(n)) for n in range(1, 60)],
    )
    # Session A's events archived; actions and deliveries of days 1-9 deleted.
    await prune(db_engine, settings(session_retention_days=30, user_retention_days=100), now=NOW)
    then = T0 + days(130)
    before = await snapshot(db_engine)

    dry = await prune(db_engine, rules, now=then, dry_run=True)

    assert await snapshot(db_engine) == before
    real = await prune(db_engine, rules, now=then)
    assert dry.rows == real.rows
    expected = {
        "events.archived": 120,
        "raw_frames.archived": 120,
        "events.deleted": 150 + (120 if grace == 0 else 0),
        "raw_frames.deleted": 120 if grace == 0 else 0,
        "actions_log.deleted": 30,  # days 10-39: older than 130 - 90 days
        "forward_deliveries.deleted": 30,
        "sessions.deleted": 2 if grace == 0 else 1,
        "streams.deleted": 1,  # OTHER_STREAM, session A's
        "users.pseudonymized": 2 if grace == 0 else 1,
        "user_notes.deleted": 1,
        "actions_log.re-keyed": 20,  # day 40 to 59, still kept
    }
    assert real.rows == {key: expected.get(key, 0) for key in STEP_KEYS}
    assert dry.dry_run
    assert not real.dry_run


async def test_zero_days_keeps_everything_and_brings_archived_rows_back(
    store: Store, db_engine: AsyncEngine
) -> None:
    await write(store, chats(new_session(), 10, start_day=0), frames=10)
    await insert_rows(db_engine, tables.actions_log, [action(1, "1001", T0)])
    await prune(db_engine, SETTINGS, now=NOW)
    forever = settings(
        event_retention_days=0,
        actions_log_retention_days=0,
        session_retention_days=0,
        user_retention_days=0,
    )
    far = NOW + days(10_000)

    report = await prune(db_engine, forever, now=far)

    assert report.rows == {
        key: 10 if key in ("events.restored", "raw_frames.restored") else 0 for key in STEP_KEYS
    }
    before = await snapshot(db_engine)
    assert (await prune(db_engine, forever, now=far + days(1))).total == 0
    after = await snapshot(db_engine)
    assert {k: v for k, v in after.items() if k != "ttlp_meta"} == {
        k: v for k, v in before.items() if k != "ttlp_meta"
    }
    e = tables.events
    assert await count(db_engine, e, e.c.archived_at.is_(None)) == 10


# -- the schedule --------------------------------------------------------------------------------
async def test_due_runs_once_per_interval_counted_from_the_last_recorded_run(
    db_engine: AsyncEngine,
) -> None:
    daily = SETTINGS  # PRUNE_INTERVAL_S 86,400

    first, wait = await prune_if_due(db_engine, daily, NOW)
    assert first is not None
    assert wait == DAY
    # Any process, any number of restarts later: the recorded time decides.
    skipped, wait = await prune_if_due(db_engine, daily, NOW + timedelta(hours=5))
    assert skipped is None
    assert wait == DAY - 5 * 3600
    second, _ = await prune_if_due(db_engine, daily, NOW + days(1))
    assert second is not None
    assert (await last_prune(db_engine)) == PruneReport(
        at=NOW + days(1), rows=second.rows, seconds=round(second.seconds, 3)
    )
    # A `ttlp prune` counts too.
    await prune(db_engine, daily, now=NOW + days(1.5))
    skipped, wait = await prune_if_due(db_engine, daily, NOW + days(2))
    assert skipped is None
    assert wait == DAY / 2
    # A dry run does not.
    await prune(db_engine, daily, now=NOW + days(3), dry_run=True)
    assert (await last_prune(db_engine) or first).at == NOW + days(1.5)


async def test_the_store_role_prunes_after_its_start_delay_then_once_per_interval(
    store: Store, db_engine: AsyncEngine
) -> None:
    await write(store, chats(new_session(), 3, start_day=0))
    naps: list[tuple[float, PruneReport | None]] = []
    stop = asyncio.Event()

    async def sleep(_stop: asyncio.Event, seconds: float) -> None:
        naps.append((seconds, await last_prune(db_engine)))
        if len(naps) == 3:
            stop.set()

    await prune_periodically(db_engine, SETTINGS, stop, clock=lambda: NOW, sleep=sleep)

    (delay, before_delay), (wait, first), (again, still) = naps
    assert (delay, before_delay) == (PRUNE_START_DELAY_S, None)  # nothing in the first minute
    assert first is not None
    assert first.at == NOW
    assert first.rows["events.archived"] == 3
    assert wait == again == PRUNE_RECHECK_S  # a day to go: look again in an hour
    assert still == first  # not run again

    # A restart an hour later waits its start delay, then finds the run not due.
    naps.clear()
    stop.clear()
    await prune_periodically(
        db_engine, SETTINGS, stop, clock=lambda: NOW + timedelta(hours=1), sleep=sleep
    )
    assert [n[1] for n in naps] == [first, first, first]
    # A restart a day later prunes, after its start delay.
    naps.clear()
    stop.clear()
    await prune_periodically(db_engine, SETTINGS, stop, clock=lambda: NOW + days(1), sleep=sleep)
    assert naps[0][1] == first
    assert (naps[1][1] or first).at == NOW + days(1)


async def test_an_interval_of_zero_never_prunes(store: Store, db_engine: AsyncEngine) -> None:
    stop = asyncio.Event()
    naps: list[float] = []

    async def sleep(_stop: asyncio.Event, seconds: float) -> None:
        naps.append(seconds)

    await prune_periodically(db_engine, settings(interval_s=0), stop, sleep=sleep)

    assert naps == []
    assert await last_prune(db_engine) is None


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_one_run_at_a_time_on_postgresql(db_engine: AsyncEngine) -> None:
    async with db_engine.connect() as holder:
        await holder.execute(text(f"SELECT pg_advisory_lock({PRUNE_LOCK_KEY})"))
        with pytest.raises(PruneBusyError):
            await prune(db_engine, SETTINGS, now=NOW)
        report, wait = await prune_if_due(db_engine, SETTINGS, NOW)
        assert report is None
        assert wait == BUSY_RETRY_S
        assert (await prune(db_engine, SETTINGS, now=NOW, dry_run=True)).dry_run
        await holder.execute(text(f"SELECT pg_advisory_unlock({PRUNE_LOCK_KEY})"))
    report, _ = await prune_if_due(db_engine, SETTINGS, NOW)
    assert report is not None


# -- ttlp prune ----------------------------------------------------------------------------------
def table_counts(output: str) -> dict[str, int]:
    """``events  would archive  12`` lines of the report table → {"events.would archive": 12}."""
    found: dict[str, int] = {}
    for line in output.splitlines():
        match = re.match(r"\s*(\w+)\s{2,}([\w -]+?)\s{2,}([\d,]+)\s*$", line)
        if match:
            found[f"{match[1]}.{match[2]}"] = int(match[3].replace(",", ""))
    return found


async def test_ttlp_prune_dry_run_then_prune(
    store: Store, db_engine: AsyncEngine, ttlp: Ttlp, tmp_path: Path
) -> None:
    # The CLI runs on the real clock: T0 is long past the retention, these events are not.
    today = (datetime.now(tz=T0.tzinfo) - T0).total_seconds() / DAY - 1
    await write(store, chats(new_session(), 12, start_day=0), frames=12)
    await write(store, chats(new_session(), 2, start_day=today, who=2), frames=2)
    url = db_engine.url.render_as_string(hide_password=False)
    env = {"DATABASE_URL": url, "EVENT_RETENTION_DAYS": "90", "USER_RETENTION_DAYS": "0"}
    before = await snapshot(db_engine)

    dry = await asyncio.to_thread(ttlp.run, "prune", "--dry-run", **env)

    assert dry.returncode == 0, dry.stderr
    assert await snapshot(db_engine) == before
    counts = table_counts(dry.stdout)
    assert counts["events.would archive"] == counts["raw_frames.would archive"] == 12
    assert counts["events.would delete"] == 0
    assert "dry run: nothing was changed" in dry.stdout
    assert "last prune: never" in dry.stdout

    real = await asyncio.to_thread(ttlp.run, "prune", **env)

    assert real.returncode == 0, real.stderr
    assert table_counts(real.stdout)["events.archived"] == 12
    e = tables.events
    assert await count(db_engine, e, e.c.archived_at.is_not(None)) == 12
    recorded = await all_rows(db_engine, tables.ttlp_meta, tables.ttlp_meta.c.key == LAST_PRUNE_KEY)
    assert len(recorded) == 1
    status = await asyncio.to_thread(ttlp.run, "status", **env)
    assert status.returncode == 0, status.stderr
    assert "events.archived 12, raw_frames.archived 12" in status.stdout
