"""GDPR erasure of one TikTok user (``ttlp.db.erasure``) on SQLite and PostgreSQL: what goes,
what stays, the audit row, the dry run, and that nothing brings the user back afterwards (the
store's refusal, a replay through the real normalizer and store, a later live event).

Whether a row is about the user is decided here independently of the erasure code
(``tests.support.gdpr``: his id in a user column, or a trace of him in the row's text, a
protobuf frame decoded first).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import events as ev
from tests.support.gdpr import (
    AKHMED,
    AKHMED_HANDLE,
    GIFT_TO_AKHMED_SEQ,
    TRACES,
    ZOE,
    extra_frames,
    fixture_frames,
    frame_text,
    mentions_akhmed,
    names_akhmed,
    seed,
    snapshot,
)
from tests.support.paths import FIXTURES
from tests.support.pipelines import running_pipeline, settled
from ttlp.contracts.events import ChatEvent, EventUser, RawFrame, decode_raw_frame
from ttlp.db import tables
from ttlp.db.erasure import (
    CLI,
    AmbiguousHandleError,
    Erasure,
    UnknownUserError,
    erase_user,
    list_erasures,
)
from ttlp.db.pseudonyms import load_salt, subject_hash
from ttlp.db.retention import ERASED_SWEPT_KEY, PruneReport, prune
from ttlp.db.store import Store
from ttlp.errors import InputError
from ttlp.settings import RetentionSettings, Settings
from ttlp.tiktok.mentions import frame_names_user, users_named_in_frame
from ttlp.tiktok.normalize import normalize_frame
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.replay import replay_session

pytestmark = pytest.mark.integration


@pytest.fixture
def store_(db_engine: AsyncEngine) -> Store:
    return Store(db_engine)


async def erase(engine: AsyncEngine, salt: str | None = None, **subject: Any) -> Erasure:
    return await erase_user(
        engine, frame_names_user, requested_by=CLI, pseudonym_salt=salt, **subject
    )


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def user_row(engine: AsyncEngine, user_id: str) -> Any:
    async with engine.connect() as conn:
        u = tables.users
        return (await conn.execute(select(u).where(u.c.user_id == user_id))).first()


def chat_of(user: EventUser, session: str, seq: int, t: float, source: str = "live") -> ChatEvent:
    return ev.chat(session, seq, who=user, t=t, source=source, message="hello again")


AKHMED_USER = EventUser(user_id=AKHMED, unique_id=AKHMED_HANDLE, display_name="Ахмед")
ZOE_USER = EventUser(user_id=ZOE, unique_id="zoe.petals")


# -- what goes and what stays --------------------------------------------------------------------
async def test_an_erasure_deletes_every_row_about_the_user_and_no_other(
    store_: Store, db_engine: AsyncEngine
) -> None:
    seeded = await seed(store_)
    before = await snapshot(db_engine)
    about = {
        name: {key for key, row in rows.items() if mentions_akhmed(name, row)}
        for name, rows in before.items()
    }
    # The seed has something about him in every table, and the protobuf-only frames.
    assert all(about.values()), about
    protobuf_only = [
        f
        for f in seeded.frames
        if isinstance(f.data, str) and AKHMED in frame_text(f.type, json.dumps(f.data))
    ]
    assert len(protobuf_only) >= 3  # two of the fixture's, the gift to him

    erasure = await erase(db_engine, handle="@Akhmed_KZN")  # any case, with the @

    after = await snapshot(db_engine)
    for name, rows in before.items():
        expected = {key: row for key, row in rows.items() if key not in about[name]}
        assert after[name] == expected, name
        assert erasure.rows[name] == len(about[name]), name
    assert erasure.total_rows == sum(len(keys) for keys in about.values())
    # Zoe's gift to him is her event: it stays (only its frame, which names him, went).
    gifts = [
        row
        for row in after["events"].values()
        if row["seq_no"] == GIFT_TO_AKHMED_SEQ and row["user_id"] == ZOE
    ]
    assert len(gifts) == 1


async def test_no_stored_frame_names_the_user_after_an_erasure(
    store_: Store, db_engine: AsyncEngine
) -> None:
    await seed(store_)
    await erase(db_engine, user_id=AKHMED)
    async with db_engine.connect() as conn:
        rows = (await conn.execute(select(tables.raw_frames))).all()
    assert rows  # the other viewers' frames are there
    for row in rows:
        assert not names_akhmed(frame_text(row.type, row.data)), (row.type, row.seq_no)
    # And every remaining frame still normalizes to its event (the archive stays replayable).
    for row in rows:
        frame = msgspec.convert(
            {
                "schemaVersion": "raw.v1",
                "streamId": row.stream_id,
                "sessionId": row.session_id,
                "source": row.source,
                "type": row.type,
                "seqNo": row.seq_no,
                "timestamp": ev.at(0),
                "ingestedAt": ev.at(0),
                "data": json.loads(row.data),
            },
            RawFrame,
        )
        assert normalize_frame(frame).user.user_id != AKHMED


async def test_the_audit_row_holds_who_when_and_counts_but_nothing_of_the_user(
    store_: Store, db_engine: AsyncEngine
) -> None:
    await seed(store_)
    erasure = await erase(db_engine, user_id=AKHMED)
    async with db_engine.connect() as conn:
        (row,) = (await conn.execute(select(tables.gdpr_erasures))).mappings().all()
    text = json.dumps(dict(row), default=str, ensure_ascii=False)
    assert not any(trace.lower() in text.lower() for trace in TRACES), text
    assert row["id"] == erasure.id
    assert row["requested_by"] == CLI
    assert row["rows"] == erasure.rows
    assert row["total_rows"] == sum(row["rows"].values()) == erasure.total_rows > 0
    assert row["subject_hash"] == subject_hash(await load_salt(db_engine, None), AKHMED)
    assert [e.id for e in await list_erasures(db_engine)] == [erasure.id]


async def test_a_dry_run_counts_what_an_erasure_deletes_and_deletes_nothing(
    store_: Store, db_engine: AsyncEngine
) -> None:
    await seed(store_)
    before = await snapshot(db_engine)
    counted = await erase(db_engine, user_id=AKHMED, dry_run=True)
    assert counted.dry_run
    assert counted.id is None
    assert await snapshot(db_engine) == before
    assert await count(db_engine, tables.gdpr_erasures) == 0
    erased = await erase(db_engine, user_id=AKHMED)
    assert erased.rows == counted.rows
    assert erased.total_rows == counted.total_rows > 0


async def test_an_unknown_user_is_not_found_and_nothing_is_written(
    store_: Store, db_engine: AsyncEngine
) -> None:
    await seed(store_)
    before = await snapshot(db_engine)
    with pytest.raises(UnknownUserError, match="nothing is stored about TikTok user 99"):
        await erase(db_engine, user_id="99")
    with pytest.raises(UnknownUserError, match=r"no TikTok user @nobody\.here"):
        await erase(db_engine, handle="@nobody.here")
    assert await snapshot(db_engine) == before
    assert await count(db_engine, tables.gdpr_erasures) == 0


@pytest.mark.parametrize(
    "subject",
    [
        {"user_id": "0"},  # the "no user" of lifecycle events: never a subject
        {"user_id": "12a"},
        {"handle": "two words"},
        {"user_id": AKHMED, "handle": AKHMED_HANDLE},
        {},
    ],
)
async def test_a_subject_that_cannot_be_one_is_refused(
    store_: Store, db_engine: AsyncEngine, subject: dict[str, str]
) -> None:
    await seed(store_)
    with pytest.raises(InputError) as refused:
        await erase(db_engine, **subject)
    assert refused.value.status == 400
    assert await count(db_engine, tables.events, tables.events.c.user_id == "0") > 0


async def test_a_handle_two_users_have_had_must_be_erased_by_id(
    store_: Store, db_engine: AsyncEngine
) -> None:
    session = ev.new_session()
    other = EventUser(user_id="7012345678901239999", unique_id=AKHMED_HANDLE.upper())
    await store_.write_events([chat_of(AKHMED_USER, session, 1, 0), chat_of(other, session, 2, 1)])
    with pytest.raises(AmbiguousHandleError, match="7012345678901239999") as refused:
        await erase(db_engine, handle=AKHMED_HANDLE)
    assert refused.value.status == 409
    await erase(db_engine, user_id=AKHMED)
    assert await user_row(db_engine, "7012345678901239999") is not None


async def test_the_users_pseudonym_row_goes_too(store_: Store, db_engine: AsyncEngine) -> None:
    """Retention may have pseudonymized the user (his row keyed by a salted id)."""
    from ttlp.db.pseudonyms import pseudonym_id

    await seed(store_)
    pseudonym = pseudonym_id(await load_salt(db_engine, None), AKHMED)
    u = tables.users
    async with db_engine.begin() as conn:
        row = (await conn.execute(select(u).where(u.c.user_id == AKHMED))).mappings().one()
        await conn.execute(insert(u).values({**row, "user_id": pseudonym, "unique_id": "user-1"}))
    erasure = await erase(db_engine, user_id=AKHMED)
    assert erasure.rows["users"] == 2
    assert await count(db_engine, u, u.c.user_id.in_([AKHMED, pseudonym])) == 0


# -- nothing brings them back ------------------------------------------------------------------
@pytest.mark.parametrize("salt", [None, "a configured PSEUDONYM_SALT"])
async def test_later_events_of_the_user_are_refused_and_counted_nowhere(
    db_engine: AsyncEngine, salt: str | None
) -> None:
    store = Store(db_engine, pseudonym_salt=salt)
    await seed(store)
    zoe_before = await user_row(db_engine, ZOE)
    await erase(db_engine, salt, user_id=AKHMED)

    live = ev.new_session()
    # He comes back to a new stream first; Zoe a second later.
    result = await store.write_events(
        [chat_of(AKHMED_USER, live, 1, 100), chat_of(ZOE_USER, live, 2, 101)]
    )
    assert (result.inserted, result.duplicates, result.refused) == (1, 0, 1)
    assert await count(db_engine, tables.events, tables.events.c.user_id == AKHMED) == 0
    assert await user_row(db_engine, AKHMED) is None
    zoe = await user_row(db_engine, ZOE)
    assert zoe.event_count == zoe_before.event_count + 1
    s = tables.sessions
    async with db_engine.connect() as conn:
        created = await conn.scalar(select(s.c.created_at).where(s.c.id == live))
    assert created.replace(tzinfo=None) == ev.when(101).replace(tzinfo=None)  # Zoe's, not his

    # A replayed event of his is refused as well.
    replay = await store.write_events([chat_of(AKHMED_USER, ev.new_session(), 1, 5, "replay")])
    assert (replay.inserted, replay.refused) == (0, 1)


async def test_a_backlog_written_by_a_store_that_had_not_seen_the_erasure_is_taken_back(
    db_engine: AsyncEngine,
) -> None:
    """A replica read the erased users before the erasure; its next batch holds his events
    (a backlog on the bus): the same transaction sees the erasure and takes them back."""
    replica = Store(db_engine)
    await seed(replica)  # its view of the erasures is read (none yet)
    await erase(db_engine, user_id=AKHMED)
    backlog = ev.new_session()
    result = await replica.write_events(
        [chat_of(AKHMED_USER, backlog, 1, 50), chat_of(ZOE_USER, backlog, 2, 51)]
    )
    assert (result.inserted, result.refused) == (1, 1)
    assert await count(db_engine, tables.events, tables.events.c.user_id == AKHMED) == 0
    assert await user_row(db_engine, AKHMED) is None
    # From then on it knows: the next one is left out before the INSERT.
    again = await replica.write_events([chat_of(AKHMED_USER, backlog, 3, 52)])
    assert (again.inserted, again.refused) == (0, 1)


async def test_events_written_while_the_erasure_runs_do_not_survive_it(
    store_: Store, db_engine: AsyncEngine
) -> None:
    """A replica keeps writing his events (and Zoe's) during the erasure: whatever it wrote
    before the erasure took its lock is deleted with the rest, whatever came after is
    refused."""
    await seed(store_)
    writer = Store(db_engine)
    await writer.write_events([chat_of(ZOE_USER, ev.new_session(), 999, 1)])  # no erasure yet
    erasing = asyncio.create_task(erase(db_engine, user_id=AKHMED))
    written = refused = 0
    n = 0
    while not erasing.done() or n < 2:
        session = ev.new_session()
        result = await writer.write_events(
            [
                chat_of(AKHMED_USER, session, 1000 + 2 * n, 200 + n),
                chat_of(ZOE_USER, session, 1001 + 2 * n, 200 + n),
            ]
        )
        written += result.inserted
        refused += result.refused
        n += 1
    await erasing
    assert refused >= 1  # the batches after the erasure
    assert written >= n  # Zoe's, every time
    assert await count(db_engine, tables.events, tables.events.c.user_id == AKHMED) == 0
    assert await user_row(db_engine, AKHMED) is None


async def test_erasing_again_sweeps_the_frames_archived_since(
    store_: Store, db_engine: AsyncEngine
) -> None:
    """The archive keeps frames as they come: his frames of a later live session are archived
    (their events refused); erasing him again finds and deletes them."""
    seeded = await seed(store_)
    first = await erase(db_engine, user_id=AKHMED)
    later = ev.new_session()
    chat = next(
        f for f in seeded.frames if f.type == "WebcastChatMessage" and isinstance(f.data, str)
    )
    assert AKHMED in frame_text(chat.type, json.dumps(chat.data))
    comeback = msgspec.structs.replace(chat, session_id=later, ingested_at=ev.soon())
    await store_.archive_frames([comeback])
    assert (await store_.write_events([normalize_frame(comeback)])).refused == 1

    second = await erase(db_engine, user_id=AKHMED)
    assert second.id != first.id
    assert second.rows["raw_frames"] == 1
    assert await count(db_engine, tables.raw_frames, tables.raw_frames.c.session_id == later) == 0
    with pytest.raises(UnknownUserError, match="erased before"):
        await erase(db_engine, user_id=AKHMED)


# -- through the pipeline: a replay, a live event ----------------------------------------------
async def test_a_replay_after_an_erasure_yields_nothing_of_the_user(
    backend: str,
    db_engine: AsyncEngine,
    backend_redis_url: str | None,
    key_prefix: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    settings = Settings.from_env(
        {},
        **{
            "bus.redis_url": backend_redis_url,
            "bus.prefix": key_prefix,
            "bus.block_ms": 50,
            "db.url": str(request.getfixturevalue(f"{backend}_database_url")),
            "data_dir": str(tmp_path),
        },
    )
    fixture = fixture_frames()
    frames = [*fixture, *extra_frames(fixture[0])]
    session = fixture[0].session_id
    e = tables.events
    async with running_pipeline(settings) as ctx:
        publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=False)
        await publisher.publish(frames)
        await settled(ctx, lambda: _has(db_engine, e, len(frames), e.c.session_id == session))
        assert await count(db_engine, e, e.c.user_id == AKHMED) > 0

        await erase(db_engine, user_id=AKHMED)
        async with db_engine.connect() as conn:
            kept = (
                await conn.execute(
                    select(tables.raw_frames.c.seq_no).where(
                        tables.raw_frames.c.session_id == session
                    )
                )
            ).scalars()
            kept_seqs = sorted(kept)

        result = await replay_session(
            ctx.store, FramePublisher(ctx.bus, ctx.keys.raw, paced=True), session
        )
        replayed = e.c.session_id == result.session_id
        await settled(ctx, lambda: _has(db_engine, e, len(kept_seqs), replayed))
        async with db_engine.connect() as conn:
            rows = (
                await conn.execute(select(e.c.user_id, e.c.seq_no, e.c.event_data).where(replayed))
            ).all()
        assert sorted(r.seq_no for r in rows) == kept_seqs
        assert all(r.user_id != AKHMED for r in rows)
        assert not any(names_akhmed(json.dumps(r.event_data, ensure_ascii=False)) for r in rows)
        assert await user_row(db_engine, AKHMED) is None
        async with db_engine.connect() as conn:  # the replay's own frames name him neither
            archived = (await conn.execute(select(tables.raw_frames))).all()
        assert {r.session_id for r in archived} == {session, result.session_id}
        assert not any(names_akhmed(frame_text(r.type, r.data)) for r in archived)

        # He comes back live: a new session with his chat and Zoe's.
        live = ev.new_session()
        chat = next(f for f in frames if f.type == "WebcastChatMessage" and isinstance(f.data, str))
        zoe_chat = next(
            f
            for f in frames
            if f.type == "WebcastChatMessage" and normalize_frame(f).user.user_id == ZOE
        )
        comeback = [
            msgspec.structs.replace(f, session_id=live, seq_no=f.seq_no + 1, ingested_at=ev.soon())
            for f in (chat, zoe_chat)
        ]
        await publisher.publish(comeback)
        await settled(ctx, lambda: _has(db_engine, e, 1, e.c.session_id == live))
        assert await count(db_engine, e, e.c.user_id == AKHMED) == 0
        assert await user_row(db_engine, AKHMED) is None


async def _has(engine: AsyncEngine, table: Any, n: int, *where: Any) -> bool:
    return await count(engine, table, *where) >= n


# -- the daily prune sweeps frames of erased users archived later -----------------------------
SWEEP_ONLY = RetentionSettings(
    event_retention_days=0,
    actions_log_retention_days=0,
    session_retention_days=0,
    user_retention_days=0,
)
"""Retention that keeps everything: a run does nothing but the erased-users sweep."""


def comeback_frames() -> tuple[list[RawFrame], list[RawFrame]]:
    """(frames naming Akhmed: one JSON, one protobuf; one of Zoe's naming only her) in a new
    live session, as if archived after his erasure."""
    lines = (FIXTURES / "raw-frames-protobuf.ndjson").read_text().splitlines()
    frames = [*fixture_frames(), *(decode_raw_frame(line) for line in lines if line.strip())]

    def text(frame: RawFrame) -> str:
        return frame_text(frame.type, json.dumps(frame.data))

    as_json = next(f for f in frames if isinstance(f.data, dict) and AKHMED in text(f))
    as_protobuf = next(f for f in frames if isinstance(f.data, str) and AKHMED in text(f))
    zoes = next(
        f
        for f in frames
        if f.type == "WebcastChatMessage" and ZOE in text(f) and not names_akhmed(text(f))
    )
    later = ev.new_session()
    moved = [
        msgspec.structs.replace(f, session_id=later, ingested_at=ev.soon(), seq_no=f.seq_no + 1)
        for f in (as_json, as_protobuf, zoes)
    ]
    return moved[:2], moved[2:]


async def prune_(engine: AsyncEngine, dry_run: bool = False) -> PruneReport:
    return await prune(engine, SWEEP_ONLY, dry_run=dry_run, frame_subjects=users_named_in_frame)


async def test_the_prune_deletes_frames_of_an_erased_user_archived_after_the_erasure(
    store_: Store, db_engine: AsyncEngine
) -> None:
    await seed(store_)
    await erase(db_engine, user_id=AKHMED)
    his, others = comeback_frames()
    await store_.archive_frames([*his, *others])
    f = tables.raw_frames
    later = f.c.session_id == his[0].session_id
    before = await snapshot(db_engine)

    dry = await prune_(db_engine, dry_run=True)

    assert dry.rows["raw_frames.erased"] == 2
    assert dry.rows["events.erased"] == 0  # the store refused his events
    assert await snapshot(db_engine) == before

    report = await prune_(db_engine)

    assert report.rows["raw_frames.erased"] == 2
    assert report.total == 2
    async with db_engine.connect() as conn:
        rows = (await conn.execute(select(f.c.seq_no, f.c.type, f.c.data).where(later))).all()
    assert [row.seq_no for row in rows] == [others[0].seq_no]
    after = await snapshot(db_engine)
    assert not any(mentions_akhmed("raw_frames", row) for row in after["raw_frames"].values())
    assert len(after["raw_frames"]) == len(before["raw_frames"]) - 2
    # The next run reads only what was archived since: nothing.
    again = await prune_(db_engine)
    assert again.rows["raw_frames.erased"] == 0


async def test_without_erasures_the_sweep_decodes_nothing(
    store_: Store, db_engine: AsyncEngine
) -> None:
    await seed(store_)
    his, others = comeback_frames()
    await store_.archive_frames([*his, *others])
    calls: list[str] = []

    def spy(raw_type: str, data: str, among: Callable[[str], bool]) -> set[str]:
        calls.append(raw_type)
        return users_named_in_frame(raw_type, data, among)

    before = await snapshot(db_engine)
    report = await prune(db_engine, SWEEP_ONLY, frame_subjects=spy)

    assert calls == []
    assert report.total == 0
    assert await snapshot(db_engine) == before
    async with db_engine.connect() as conn:
        meta = tables.ttlp_meta
        mark = await conn.scalar(select(meta.c.value).where(meta.c.key == ERASED_SWEPT_KEY))
    assert mark is None
