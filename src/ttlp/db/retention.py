"""Retention (DESIGN §6): how long ttlp keeps what it stored, and ``ttlp prune``.

One run (``Pruner.run``, the same for the store role's daily run and ``ttlp prune``), in order:

1. **restore** events and raw frames archived earlier whose TikTok time is back within
   EVENT_RETENTION_DAYS (the operator raised it during the grace period: that is what the grace
   is for; with the retention at 0 every archived row comes back);
2. **archive** events and raw frames older than EVENT_RETENTION_DAYS (by TikTok time): their
   ``archived_at`` is set, and every view (``ttlp.db.queries``) and replay stop showing them;
3. **delete** events and raw frames archived RETENTION_GRACE_DAYS ago or longer;
3b. **erase** raw frames archived since the last run that name a user a GDPR erasure named
   (``raw_frames.erased``), and any event of those users (``events.erased``; the store refuses
   them, so none is expected): the archive does not look inside frames, so a user who comes
   back to a stream, or a bus backlog archived after the erasure, brings their frames back.
   Only when ``gdpr_erasures`` has rows (otherwise the step reads nothing). The frames from
   the watermark ``prune_erased_swept_to`` (``ttlp_meta``: the last ``raw_frames.id`` read; none
   yet: from the first frame) up to ``max(id)`` taken as the erasure takes it (no write in
   flight) are read a batch at a time and decoded off the loop by ``frame_subjects``
   (``ttlp.tiktok.mentions.users_named_in_frame``: every id the frame could name, each hashed
   with ``subject_hash`` and kept when erased, then confirmed by the erasure's own
   ``frame_names_user``); each batch deletes and moves the watermark in one transaction. No
   id is written anywhere: the report counts rows. Measured on one core (``users_named_in_frame``
   over the fixture frames, every candidate hashed): 4,700 frames/s (JSON, raw-frames.ndjson),
   2,500 frames/s (protobuf, raw-frames-protobuf.ndjson);
4. **delete** ``actions_log`` rows older than ACTIONS_LOG_RETENTION_DAYS, and forward
   deliveries that ended (delivered or dead, never pending) as long ago;
5. **delete** sessions that ended (never ended: were created) SESSION_RETENTION_DAYS ago or
   longer and have no event and no raw frame left, then streams as old with no session left;
6. **pseudonymize** TikTok users not seen for USER_RETENTION_DAYS who have no event left: the
   id becomes ``pseudonym_id`` (a salted hash, ``ttlp.db.pseudonyms``), the handle
   ``user-<8 hex>``, display name and avatar are cleared, and the row keeps its counts (first
   and last seen, event_count), so totals survive. Their **notes are deleted**: a note is
   written about a person by name ("spams links, was @x before"), and keeping it under a
   pseudonym would keep the person. Remaining ``actions_log`` rows are re-keyed to the
   pseudonym (there are none when ACTIONS_LOG_RETENTION_DAYS ≤ USER_RETENTION_DAYS). A user
   pseudonymized earlier who comes back gets a new row; when that one is pseudonymized too it
   is merged into the first (counts added). 0 days = kept forever, for every setting.

Each step works in batches of PRUNE_BATCH_SIZE rows, one short transaction each
(the ids of a batch are selected first through an index, ``ORDER BY <indexed time> LIMIT n``,
locked ``FOR UPDATE`` on PostgreSQL, then ``UPDATE/DELETE ... WHERE id = ANY(:ids)``: see
``_step`` for why the ids alone), so the live pipeline never waits long for a lock, and a run
interrupted anywhere (an outage, a stop) has lost nothing: the next one continues. The SELECTs
go through the partial indexes of migration 0007 (rows still live by TikTok time; archived rows
by when they were archived), and each batch starts where the last one ended (its newest time:
keyset), so a run never rescans what it has just archived or deleted. A row that changed
meanwhile (a delivery queued again by ``ttlp dlq retry``) is re-checked by the locking SELECT
and left alone.

Restoring needs the archived rows by TikTok time, which no index gives: instead the run keeps a
watermark in ``ttlp_meta`` (``prune_archived_below``): every archived row is older than it. It
is the archive cutoff of the last run, written after the restore step and before the archive
step, so it holds whenever a run stops. A run whose cutoff is not older than the watermark (the
retention was not raised) has nothing to restore and skips the scan.

A dry run counts what a run would do now, step by step, with the same conditions (a row that
an earlier step would delete counts as gone for the later ones), and writes nothing.

A run's report and time are kept in ``ttlp_meta`` (``last_prune``): the store role prunes
PRUNE_INTERVAL_S after the last recorded run, whichever process ran it, and ``ttlp status``
shows it. On PostgreSQL a run holds an advisory lock (``prune_lock``), so one store replica (or
``ttlp prune``) prunes at a time. SQLite has one writer at a time anyway: two runs there (the
embedded ``ttlp run`` and a ``ttlp prune``) interleave their batches, each of which is
idempotent; the pseudonymization batches take the write lock first (``BEGIN IMMEDIATE``).

**Batched deletes, not time partitions** (measured by ``benchmarks/prune.py``, the figures in its
output): a unique index of a partitioned PostgreSQL table must contain the partition key, so
partitioning ``events`` by time would break ``event_id``'s uniqueness (``ON CONFLICT
(event_id)`` dedupe of re-delivered events) and the live seqNo dedupe index
(``ux_events_live_seq``) across partitions: exactly the re-sends after a reconnect that cross a
day or month boundary. Dropping a partition is faster, but batches keep the whole schema, run on
SQLite unchanged, and archive/restore (a grace period) would still be row updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from sqlalchemy import (
    ColumnElement,
    Delete,
    FromClause,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ttlp.aio import as_utc, parse_iso, to_iso
from ttlp.db import tables
from ttlp.db.engine import write_transaction
from ttlp.db.erasure import ErasedSubjects, _watermarks
from ttlp.db.pseudonyms import load_salt, pseudonym_handle, pseudonym_id
from ttlp.errors import TransientError
from ttlp.settings import RetentionSettings

LAST_PRUNE_KEY: Final = "last_prune"
"""``ttlp_meta`` key of the last complete run's report (JSON)."""
ARCHIVED_BELOW_KEY: Final = "prune_archived_below"
"""``ttlp_meta`` key of the watermark: every archived event and raw frame is older than it."""
ERASED_SWEPT_KEY: Final = "prune_erased_swept_to"
"""``ttlp_meta`` key of the last ``raw_frames.id`` the erased-users sweep has read."""
USER_BATCH_MAX: Final = 1000
"""Users per pseudonymization batch: each is two parameters in two CASEs of one UPDATE, and
PostgreSQL takes at most 32,767 parameters per statement."""
MAX_REST_S: Final = 5.0
"""A rest between batches never exceeds this, so a stop is seen within a few seconds."""
BATCH_TARGET_S: Final = 0.05
"""How long one batch may hold the database: a batch that took longer halves the next one, a
much quicker one lets it grow back (up to PRUNE_BATCH_SIZE). A live commit waits at most
about this long behind a batch (see ``_Pruner._resize``)."""
MIN_BATCH: Final = 50
PRUNE_LOCK_KEY: Final = int.from_bytes(
    hashlib.sha256(b"ttlp:prune").digest()[:8], "big", signed=True
)
"""The PostgreSQL advisory lock a run holds (per database)."""
BUSY_RETRY_S: Final = 600.0
"""Another replica is pruning: look again this much later (its run will be recorded)."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
FINISHED: Final = ("delivered", "dead")
"""Forward deliveries that retention may delete (a pending one is still to be sent)."""

STEPS: Final = (
    ("events", "restored"),
    ("raw_frames", "restored"),
    ("events", "archived"),
    ("raw_frames", "archived"),
    ("events", "deleted"),
    ("raw_frames", "deleted"),
    ("raw_frames", "erased"),
    ("events", "erased"),
    ("actions_log", "deleted"),
    ("forward_deliveries", "deleted"),
    ("sessions", "deleted"),
    ("streams", "deleted"),
    ("users", "pseudonymized"),
    ("user_notes", "deleted"),
    ("actions_log", "re-keyed"),
)
"""What a run does, in order: (table, what happens to its rows). A step's key is
``table.action``."""
STEP_KEYS: Final = tuple(f"{table}.{action}" for table, action in STEPS)

FrameSubjects = Callable[[str, str, Callable[[str], bool]], set[str]]
"""(a frame's raw type, its ``data`` as stored, which user ids to look for) → the user ids among
those that the frame names: ``ttlp.tiktok.mentions.users_named_in_frame`` (a package below
``db`` cannot import it)."""

Progress = Callable[[str, int, int | None], None]
"""``(step key, rows done so far, rows the step will touch or None when not counted)``: called
when a step starts and after each batch."""


class PruneBusyError(TransientError):
    """Another run holds the prune lock (a store replica, or ``ttlp prune``)."""


@dataclass(frozen=True)
class PruneReport:
    """What one run did (or, a dry run, would do): rows per step, in ``STEPS`` order."""

    at: datetime
    """The run's clock: the cutoffs are measured from it."""
    rows: dict[str, int]
    seconds: float
    dry_run: bool = False
    complete: bool = True
    """False when the run was stopped between batches (shutdown): the next one goes on."""
    step_seconds: dict[str, float] = field(default_factory=dict, compare=False)
    """How long each step took (not recorded; the users step's time is under its first
    key)."""

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def changed(self) -> dict[str, int]:
        """The steps that touched rows (for a log line)."""
        return {key: n for key, n in self.rows.items() if n}

    def to_json(self) -> str:
        doc = {"at": to_iso(self.at), "seconds": round(self.seconds, 3), "rows": self.rows}
        return msgspec.json.encode(doc).decode()

    @classmethod
    def from_json(cls, text: str) -> PruneReport:
        doc = msgspec.json.decode(text)
        rows = {key: int(doc["rows"].get(key, 0)) for key in STEP_KEYS}
        return cls(at=parse_iso(doc["at"]), rows=rows, seconds=float(doc["seconds"]))


@dataclass
class _Batches:
    """One step's progress: rows done, reported to the progress callback."""

    key: str
    total: int | None
    progress: Progress | None
    done: int = 0

    def start(self) -> None:
        if self.progress is not None:
            self.progress(self.key, 0, self.total)

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.key, self.done, self.total)


@dataclass
class Pruner:
    """One run over ``engine`` with ``settings``, as of ``now`` (an injectable clock).

    ``dry_run``: count only, write nothing. ``progress``: told each step's total (counted
    first, which costs a scan per step: only when asked for, or in a dry run) and its rows
    done after each batch. ``should_stop``: checked between batches; when it answers True
    the run ends early (``PruneReport.complete`` False, nothing recorded)."""

    engine: AsyncEngine
    settings: RetentionSettings
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    dry_run: bool = False
    progress: Progress | None = None
    should_stop: Callable[[], bool] = lambda: False
    frame_subjects: FrameSubjects | None = None
    """How the erased-users sweep reads a frame; None: no sweep (``raw_frames.erased`` 0)."""
    batch_target_s: float = BATCH_TARGET_S
    """How long a batch may hold the database before the next one is halved (0: batches stay
    PRUNE_BATCH_SIZE)."""

    def __post_init__(self) -> None:
        self.now = as_utc(self.now)
        s = self.settings
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.batch = s.batch_size
        """Rows per batch now: at most PRUNE_BATCH_SIZE, sized to BATCH_TARGET_S."""
        self.pause_ratio = s.pause_ratio
        self.keep_from = self._cutoff(s.event_retention_days)
        """Events and frames from this TikTok time on are kept (None: all)."""
        self.delete_archived_to = self.now - timedelta(days=s.grace_days)
        self.actions_from = self._cutoff(s.actions_log_retention_days)
        self.sessions_from = self._cutoff(s.session_retention_days)
        self.users_from = self._cutoff(s.user_retention_days)
        self._stopped = False

    def _cutoff(self, days: int) -> datetime | None:
        return self.now - timedelta(days=days) if days > 0 else None

    # -- the run -------------------------------------------------------------------------------
    async def run(self) -> PruneReport:
        started = time.perf_counter()
        rows: dict[str, int] = dict.fromkeys(STEP_KEYS, 0)
        seconds: dict[str, float] = {}

        async def step(key: str, work: Awaitable[int]) -> None:
            begun = time.perf_counter()
            rows[key] = await work
            seconds[key] = time.perf_counter() - begun

        restore = await self._restore_needed()
        for t in (tables.events, tables.raw_frames):
            if restore:
                await step(f"{t.name}.restored", self._restore(t))
        if not self.dry_run and not self._stopped:
            await self._set_archived_below()
        for t in (tables.events, tables.raw_frames):
            await step(f"{t.name}.archived", self._archive(t))
        for t in (tables.events, tables.raw_frames):
            await step(f"{t.name}.deleted", self._delete_archived(t))
        begun = time.perf_counter()
        rows["raw_frames.erased"], rows["events.erased"] = await self._sweep_erased()
        seconds["raw_frames.erased"] = time.perf_counter() - begun
        await step("actions_log.deleted", self._delete_actions())
        await step("forward_deliveries.deleted", self._delete_deliveries())
        await step("sessions.deleted", self._delete_sessions())
        await step("streams.deleted", self._delete_streams())
        begun = time.perf_counter()
        users, notes, rekeyed = await self._pseudonymize()
        seconds["users.pseudonymized"] = time.perf_counter() - begun
        rows["users.pseudonymized"] = users
        rows["user_notes.deleted"] = notes
        rows["actions_log.re-keyed"] = rekeyed
        report = PruneReport(
            at=self.now,
            rows=rows,
            seconds=time.perf_counter() - started,
            dry_run=self.dry_run,
            complete=not self._stopped,
            step_seconds=seconds,
        )
        if report.complete and not self.dry_run:
            async with self.engine.begin() as conn:
                await _meta_set(conn, LAST_PRUNE_KEY, report.to_json(), self.now)
        return report

    # -- 1-3: events and raw frames ------------------------------------------------------------
    async def _restore_needed(self) -> bool:
        """False when the watermark shows that no archived row is within retention."""
        if self.keep_from is None:
            return True
        async with self.engine.connect() as conn:
            below = await _meta_get(conn, ARCHIVED_BELOW_KEY)
        return below is None or self.keep_from < parse_iso(below)

    async def _set_archived_below(self) -> None:
        """After the restore step (or when it had nothing to do) every archived row is older
        than this run's cutoff, and the archive step archives only older ones: written before
        the archive step, the watermark holds whenever the run stops."""
        below = self.keep_from or _EPOCH  # retention 0: nothing is archived any more
        async with self.engine.begin() as conn:
            await _meta_set(conn, ARCHIVED_BELOW_KEY, to_iso(below), self.now)

    def _restorable(self, t: Table) -> ColumnElement[bool]:
        archived = t.c.archived_at.is_not(None)
        return (
            archived if self.keep_from is None else and_(archived, t.c.timestamp >= self.keep_from)
        )

    def _expired(self, t: Table) -> ColumnElement[bool]:
        """Live rows past retention (the archive step's rows)."""
        assert self.keep_from is not None
        return and_(t.c.archived_at.is_(None), t.c.timestamp < self.keep_from)

    def _gone(self, t: Table) -> ColumnElement[bool]:
        """Rows of ``t`` (events, raw_frames) this run deletes: archived for the grace period
        and still past retention. A dry run, having archived nothing, also counts the rows it
        would archive when the grace is 0 (deleted in the same run)."""
        if self.keep_from is None:
            return false()
        gone = and_(
            t.c.archived_at.is_not(None),
            t.c.archived_at <= self.delete_archived_to,
            t.c.timestamp < self.keep_from,
        )
        if self.dry_run and self.settings.grace_days == 0:
            gone = or_(gone, self._expired(t))
        return gone

    async def _restore(self, t: Table) -> int:
        restore = update(t).values(archived_at=None)
        return await self._step(
            f"{t.name}.restored", t, self._restorable(t), t.c.archived_at, restore
        )

    async def _archive(self, t: Table) -> int:
        if self.keep_from is None:
            return 0
        archive = update(t).values(archived_at=self.now)
        return await self._step(f"{t.name}.archived", t, self._expired(t), t.c.timestamp, archive)

    async def _delete_archived(self, t: Table) -> int:
        if self.keep_from is None:
            return 0
        return await self._step(f"{t.name}.deleted", t, self._gone(t), t.c.archived_at, delete(t))

    def _surviving(self, t: Table) -> ColumnElement[bool]:
        """Rows of events/raw_frames still there after this run."""
        return not_(self._gone(t)) if self.keep_from is not None else true()

    # -- 3b: frames of erased users archived since ------------------------------------------------
    async def _sweep_erased(self) -> tuple[int, int]:
        """→ (raw frames, events) of erased users deleted (a dry run: counted)."""
        if self.frame_subjects is None:
            return 0, 0
        erased = ErasedSubjects(self.settings.pseudonym_salt)
        async with self.engine.connect() as conn:
            if not await conn.run_sync(erased.refresh):
                return 0, 0  # no erasure (or no salt to hash with: erasure logs that)
            swept = await _meta_get(conn, ERASED_SWEPT_KEY)
        after = int(swept) if swept is not None else 0
        until = (await _watermarks(self.engine))["raw_frames"]
        f, e = tables.raw_frames, tables.events
        frames = _Batches("raw_frames.erased", None, self.progress)
        events = _Batches("events.erased", None, self.progress)
        frames.start()
        events.start()
        check = self.frame_subjects
        while after < until and not self._stop_now():
            async with self.engine.connect() as conn:
                page = (
                    await conn.execute(
                        select(f.c.id, f.c.type, f.c.data)
                        .where(f.c.id > after, f.c.id <= until)
                        .order_by(f.c.id)
                        .limit(self.batch)
                    )
                ).all()
            if not page:
                break
            hit, users = await asyncio.to_thread(_erased_in, page, check, erased.is_erased)
            after = page[-1].id
            if self.dry_run:
                frames.add(len(hit))
                if users:
                    events.add(await self._count(e, e.c.user_id.in_(sorted(users))))
                continue
            async with self._write() as conn:
                if hit:
                    frames.add((await conn.execute(delete(f).where(self._among(f, hit)))).rowcount)
                if users:
                    gone = await conn.execute(delete(e).where(e.c.user_id.in_(sorted(users))))
                    events.add(gone.rowcount)
                await _meta_set(conn, ERASED_SWEPT_KEY, str(after), self.now)
        return frames.done, events.done

    # -- 4: rule firings and deliveries --------------------------------------------------------
    async def _delete_actions(self) -> int:
        if self.actions_from is None:
            return 0
        a = tables.actions_log
        old = a.c.created_at < self.actions_from
        return await self._step("actions_log.deleted", a, old, a.c.created_at, delete(a))

    async def _delete_deliveries(self) -> int:
        if self.actions_from is None:
            return 0
        d = tables.forward_deliveries
        ended = and_(d.c.updated_at < self.actions_from, d.c.status.in_(FINISHED))
        return await self._step("forward_deliveries.deleted", d, ended, d.c.updated_at, delete(d))

    # -- 5: sessions and streams ---------------------------------------------------------------
    def _session_gone(self, s: FromClause) -> ColumnElement[bool]:
        assert self.sessions_from is not None
        e, f = tables.events, tables.raw_frames
        return and_(
            func.coalesce(s.c.ended_at, s.c.created_at) < self.sessions_from,
            ~exists().where(e.c.session_id == s.c.id, self._surviving(e)),
            ~exists().where(f.c.session_id == s.c.id, self._surviving(f)),
        )

    async def _delete_sessions(self) -> int:
        if self.sessions_from is None:
            return 0
        s = tables.sessions
        return await self._step("sessions.deleted", s, self._session_gone(s), s.c.id, delete(s))

    async def _delete_streams(self) -> int:
        if self.sessions_from is None:
            return 0
        t = tables.streams
        s = tables.sessions.alias("s")
        gone = and_(
            func.coalesce(t.c.ended_at, t.c.started_at) < self.sessions_from,
            ~exists().where(s.c.stream_id == t.c.id, not_(self._session_gone(s))),
        )
        return await self._step("streams.deleted", t, gone, t.c.id, delete(t))

    # -- 6: users ------------------------------------------------------------------------------
    def _inactive(self) -> ColumnElement[bool]:
        """Users to pseudonymize: not seen for the retention, not yet done."""
        assert self.users_from is not None
        u = tables.users
        return and_(u.c.pseudonymized_at.is_(None), u.c.last_seen < self.users_from)

    def _to_pseudonymize(self) -> ColumnElement[bool]:
        """Inactive users with no event left after this run (by the settings' check their
        events are deleted first; a user whose last events wait out the grace waits too)."""
        u, e = tables.users, tables.events
        return and_(
            self._inactive(),
            ~exists().where(e.c.user_id == u.c.user_id, self._surviving(e)),
        )

    async def _pseudonymize(self) -> tuple[int, int, int]:
        """→ (users pseudonymized, notes deleted, actions_log rows re-keyed)."""
        if self.users_from is None:
            return 0, 0, 0
        u, notes, a = tables.users, tables.user_notes, tables.actions_log
        chosen = select(u.c.user_id).where(self._to_pseudonymize())
        kept_actions = a.c.created_at >= self.actions_from if self.actions_from else true()
        steps = [
            _Batches(key, None, self.progress)
            for key in ("users.pseudonymized", "user_notes.deleted", "actions_log.re-keyed")
        ]
        if self.dry_run or self.progress is not None:
            totals = (
                await self._count(u, self._to_pseudonymize()),
                await self._count(notes, notes.c.user_id.in_(chosen)),
                await self._count(a, and_(a.c.user_id.in_(chosen), kept_actions)),
            )
            for step, total in zip(steps, totals, strict=True):
                step.total = total
        if self.dry_run:
            return tuple(step.total or 0 for step in steps)  # type: ignore[return-value]
        for step in steps:
            step.start()
        async with self.engine.connect() as conn:
            if (await conn.execute(chosen.limit(1))).first() is None:
                return 0, 0, 0
        salt = await load_salt(self.engine, self.settings.pseudonym_salt)
        floor: tuple[datetime, str] | None = None
        size = min(self.batch, USER_BATCH_MAX)
        while not self._stop_now():
            async with self._write() as conn:
                query = select(u.c.user_id, u.c.last_seen).where(self._to_pseudonymize())
                if floor is not None:
                    at, last = floor
                    query = query.where(
                        u.c.last_seen >= at, or_(u.c.last_seen > at, u.c.user_id > last)
                    )
                query = query.order_by(u.c.last_seen, u.c.user_id).limit(size)
                batch = (await conn.execute(query.with_for_update(of=u, skip_locked=True))).all()
                if not batch:
                    break
                renamed = {row.user_id: pseudonym_id(salt, row.user_id) for row in batch}
                done = await self._rename(conn, renamed)
                if done:
                    ids = list(done)
                    gone = await conn.execute(delete(notes).where(notes.c.user_id.in_(ids)))
                    moved = await conn.execute(
                        update(a)
                        .where(a.c.user_id.in_(ids))
                        .values(user_id=case(done, value=a.c.user_id))
                    )
                    steps[1].add(gone.rowcount)
                    steps[2].add(moved.rowcount)
                steps[0].add(len(done))
                floor = (as_utc(batch[-1].last_seen), batch[-1].user_id)
            if len(batch) < size:
                break
        return steps[0].done, steps[1].done, steps[2].done

    async def _rename(self, conn: AsyncConnection, renamed: dict[str, str]) -> dict[str, str]:
        """Pseudonymize the users ``renamed`` maps (real id → pseudonym) that are still
        inactive; → the mapping of those done. A user whose pseudonym has a row already (they
        came back after being pseudonymized) is merged into it."""
        u = tables.users
        taken = set(
            (await conn.execute(select(u.c.user_id).where(u.c.user_id.in_(renamed.values()))))
            .scalars()
            .all()
        )
        fresh = {old: new for old, new in renamed.items() if new not in taken}
        done: dict[str, str] = {}
        if fresh:
            result = await conn.execute(
                update(u)
                .where(u.c.user_id.in_(list(fresh)), self._inactive())
                .values(
                    user_id=case(fresh, value=u.c.user_id),
                    unique_id=case(
                        {old: pseudonym_handle(new) for old, new in fresh.items()},
                        value=u.c.user_id,
                    ),
                    display_name=None,
                    avatar_url=None,
                    pseudonymized_at=self.now,
                )
                .returning(u.c.user_id)
            )
            renamed_to = set(result.scalars().all())
            done |= {old: new for old, new in fresh.items() if new in renamed_to}
        for old, new in renamed.items():
            if new not in taken:
                continue
            row = (
                await conn.execute(
                    delete(u)
                    .where(u.c.user_id == old, self._inactive())
                    .returning(u.c.event_count, u.c.first_seen, u.c.last_seen)
                )
            ).first()
            if row is None:
                continue
            await conn.execute(
                update(u)
                .where(u.c.user_id == new)
                .values(
                    event_count=u.c.event_count + row.event_count,
                    first_seen=case(
                        (u.c.first_seen > row.first_seen, row.first_seen), else_=u.c.first_seen
                    ),
                    last_seen=case(
                        (u.c.last_seen < row.last_seen, row.last_seen), else_=u.c.last_seen
                    ),
                )
            )
            done[old] = new
        return done

    # -- batches ---------------------------------------------------------------------------------
    async def _step(
        self,
        key: str,
        table: Table,
        condition: ColumnElement[bool],
        order: ColumnElement[Any],
        act: Update | Delete,
    ) -> int:
        """``act`` (an UPDATE or DELETE) on the rows of ``condition``, ``batch_size`` at a time
        in ``order``, each batch in a transaction of its own, until a batch comes back short;
        each batch starts at the last one's largest ``order`` (keyset). A dry run counts the
        rows instead.

        A batch picks its ids first, then acts on those ids alone (``id = ANY(...)``): a
        statement that also carries the condition is planned from the table's statistics,
        which a run makes stale at once. PostgreSQL estimated one archived row after a quarter
        of the table was archived, and so ran ``WHERE id IN (SELECT ... LIMIT n)`` as a
        subquery per row, and ``WHERE id = ANY(:ids) AND archived_at <= ...`` as a scan of
        the whole archived-rows index testing each entry against the 5,000 ids (52 s per batch
        at 10 M events). With the ids alone the only plan is the primary key. The condition
        still holds when the batch acts: on PostgreSQL the ids are selected ``FOR UPDATE``
        (a row changed meanwhile, e.g. a delivery queued again by ``ttlp dlq retry``, is
        re-checked by the SELECT and left out, and cannot change until the batch commits); on
        SQLite the transaction holds the write lock from its start (``_write``)."""
        total = None
        if self.dry_run or self.progress is not None:
            total = await self._count(table, condition)
        step = _Batches(key, total, self.progress)
        if self.dry_run:
            return total or 0
        step.start()
        floor: Any = None
        while not self._stop_now():
            query = select(table.c.id, order).where(condition)
            if floor is not None:
                query = query.where(order >= floor)
            query = query.order_by(order).limit(self.batch)
            if not self.sqlite:
                query = query.with_for_update(of=table)
            size = self.batch
            started = time.monotonic()
            async with self._write() as conn:
                rows = (await conn.execute(query)).all()
                if rows:
                    ids = self._among(table, [row[0] for row in rows])
                    step.add((await conn.execute(act.where(ids))).rowcount)
            if len(rows) < size:
                break
            floor = rows[-1][1]
            worked = time.monotonic() - started
            self._resize(worked)
            await self._rest(worked)
        return step.done

    def _resize(self, worked_s: float) -> None:
        """The next batch's size from how long this one held the database (BATCH_TARGET_S).

        A live commit that arrives during a batch waits for it: PostgreSQL flushes the WAL in
        order, so the live store's commit also flushes the batch's share of WAL (every row
        rewritten with its 12 index entries when archiving), and on SQLite the batch holds the
        write lock. So the batch's length, not only the rest after it, bounds what prune adds
        to the live latency. Measured by ``benchmarks/prune.py`` at 10 M events with the live
        pipeline at 1,000 frames/s (2 cores): fixed batches of 1,000 (about 0.18 s each under
        the live load) let the live p99 reach 135-156 ms; batches sized to 50 ms (and commits
        without a WAL flush wait) kept it at 89 ms archiving and 86 ms deleting (35 ms before;
        target 100 ms), archiving at the same 2,877 rows/s and deleting at 35,914 rows/s."""
        target = self.batch_target_s
        if target <= 0:
            return
        if worked_s > target:
            self.batch = max(MIN_BATCH, self.batch // 2)
        elif worked_s < target / 2:
            self.batch = min(self.settings.batch_size, self.batch + max(self.batch // 4, 1))

    async def _rest(self, worked_s: float) -> None:
        """Rest PRUNE_PAUSE_RATIO times as long as the batch took: on 2 cores a batch busies
        the database's core, and the live pipeline's INSERTs wait behind it. Measured by
        ``benchmarks/prune.py`` at 10 M events, 1,000 frames/s, batches of 5,000: without rest
        the live p99 went from 23 ms to 187 ms while archiving and 155 ms while deleting
        (target 100 ms); at 1 M events with a rest as long as the batch, 105 and 64 ms. Hence
        batches of 1,000 (PRUNE_BATCH_SIZE) and a rest of 1× (PRUNE_PAUSE_RATIO) by default."""
        pause = min(worked_s * self.pause_ratio, MAX_REST_S)
        if pause > 0 and not self.dry_run:
            await asyncio.sleep(pause)

    def _among(self, table: Table, ids: list[Any]) -> ColumnElement[bool]:
        """``table.id`` is one of ``ids``: one array parameter on PostgreSQL (one statement
        text, whatever the batch), a list on SQLite."""
        if self.sqlite:
            return table.c.id.in_(ids)
        return table.c.id == any_(bindparam("ids", ids, type_=postgresql.ARRAY(table.c.id.type)))

    async def _count(self, table: Table, condition: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(table).where(condition)
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    def _stop_now(self) -> bool:
        if not self._stopped and self.should_stop():
            self._stopped = True
        return self._stopped

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that reads, then writes (SQLite: the write lock from the start).

        On PostgreSQL its commit does not wait for the WAL flush (``synchronous_commit`` off
        for this transaction alone): the live store's next commit flushes it anyway, and a
        batch lost in a crash is redone by the next run (every batch is idempotent), whereas
        a flush per batch is one more fsync the live commits queue behind."""
        async with write_transaction(self.engine) as conn:
            if not self.sqlite:
                await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn


def _erased_in(
    frames: Sequence[Any], check: FrameSubjects, is_erased: Callable[[str], bool]
) -> tuple[list[int], set[str]]:
    """→ (ids of the frames that name an erased user, those users' ids)."""
    hit: list[int] = []
    users: set[str] = set()
    for row in frames:
        named = check(row.type, row.data, is_erased)
        if named:
            hit.append(row.id)
            users |= named
    return hit, users


# -- one run, the lock and the record ------------------------------------------------------------
async def prune(
    engine: AsyncEngine,
    settings: RetentionSettings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    frame_subjects: FrameSubjects | None = None,
    batch_target_s: float = BATCH_TARGET_S,
) -> PruneReport:
    """One run (see the module docstring); a real one under the prune lock, or
    ``PruneBusyError`` when another run holds it."""
    pruner = Pruner(
        engine,
        settings,
        now=now or datetime.now(UTC),
        dry_run=dry_run,
        progress=progress,
        should_stop=should_stop,
        frame_subjects=frame_subjects,
        batch_target_s=batch_target_s,
    )
    if dry_run:
        return await pruner.run()
    async with prune_lock(engine) as held:
        if not held:
            raise PruneBusyError(
                "another prune is running (a store role or `ttlp prune`): it does the same; "
                "try again when it has finished"
            )
        return await pruner.run()


@contextlib.asynccontextmanager
async def prune_lock(engine: AsyncEngine) -> AsyncIterator[bool]:
    """Whether this process may prune now: on PostgreSQL a session advisory lock, held on a
    connection of its own (autocommit: an open transaction for the whole run would hold back
    VACUUM) until the block ends; SQLite: always (see the module docstring)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        held = bool(await conn.scalar(select(func.pg_try_advisory_lock(PRUNE_LOCK_KEY))))
        try:
            yield held
        finally:
            if held:
                try:
                    await conn.scalar(select(func.pg_advisory_unlock(PRUNE_LOCK_KEY)))
                except Exception:
                    # The connection broke (which ended the lock) or is unusable: never return
                    # it to the pool still holding the lock.
                    await conn.invalidate()


async def last_prune(engine: AsyncEngine) -> PruneReport | None:
    """The last complete run, as recorded; None when none has run."""
    async with engine.connect() as conn:
        value = await _meta_get(conn, LAST_PRUNE_KEY)
    return PruneReport.from_json(value) if value is not None else None


def due_in(last: PruneReport | None, now: datetime, interval_s: float) -> float:
    """Seconds until the next run is due, ``interval_s`` after the last recorded one (0: due)."""
    if last is None:
        return 0.0
    return max(0.0, (last.at - as_utc(now)).total_seconds() + interval_s)


async def prune_if_due(
    engine: AsyncEngine,
    settings: RetentionSettings,
    now: datetime,
    should_stop: Callable[[], bool] = lambda: False,
    frame_subjects: FrameSubjects | None = None,
) -> tuple[PruneReport | None, float]:
    """Run when PRUNE_INTERVAL_S has passed since the last recorded run (whoever ran it);
    → (the report or None, seconds until the next one is due). Another replica pruning:
    None, and ``busy_retry_s`` to look again."""
    interval = settings.interval_s
    wait = due_in(await last_prune(engine), now, interval)
    if wait > 0:
        return None, wait
    async with prune_lock(engine) as held:
        if not held:
            return None, min(interval, BUSY_RETRY_S)
        # Read again under the lock: the replica that held it may just have finished a run.
        wait = due_in(await last_prune(engine), now, interval)
        if wait > 0:
            return None, wait
        report = await Pruner(
            engine, settings, now=now, should_stop=should_stop, frame_subjects=frame_subjects
        ).run()
    return report, interval


# -- ttlp_meta -----------------------------------------------------------------------------------
async def _meta_get(conn: AsyncConnection, key: str) -> str | None:
    meta = tables.ttlp_meta
    value = await conn.scalar(select(meta.c.value).where(meta.c.key == key))
    return None if value is None else str(value)


async def _meta_set(conn: AsyncConnection, key: str, value: str, now: datetime) -> None:
    meta = tables.ttlp_meta
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(meta).values(key=key, value=value, updated_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[meta.c.key],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
    )
