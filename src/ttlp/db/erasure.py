"""GDPR erasure of one TikTok user (DESIGN §6): everything stored about them goes in one
transaction, an audit row remembers that it happened (never who), and the store refuses them
from then on.

What ``erase_user`` deletes:

- the user's events (``events.user_id``), and the events of others that name them: a RAW event
  whose TikTok message lists them (a ranking, a link-mic guest, a banner) or a BATTLE among
  whose participants they are. Those are **deleted, not redacted**: their raw frames name the
  user and go too (below), so a redacted event would be one that no replay reproduces; and a
  TikTok message of unknown shape cannot be redacted with certainty (a name inside a text
  piece, the id inside an avatar URL), while deleting it is certain. No other viewer's own
  action goes this way: a UnifiedEvent v1 CHAT, GIFT, LIKE... carries its own user only (the
  only payloads that can name someone else are RAW's and BATTLE's);
- the raw frames that name them anywhere. ``raw_frames`` has no user column, so the frames of
  every session where those events are, and of the replays of those sessions (and, for a user
  erased before, of every session since), are decoded with ttlp's own decoder
  (``ttlp.tiktok.mentions``, passed in as ``names_in_frame``) and dropped when the message holds
  the user id in an id field or as a map key (``UserMatcher``). A gift *to* them from someone else
  is such a frame: the giver's GIFT event stays, but a replay no longer yields it;
- their notes, their ``users`` row (and the row of their pseudonym, should retention have
  pseudonymized them), the ``actions_log`` rows about them or about the deleted events, and the
  ``forward_deliveries`` whose body names them.

How: the search runs first, read-only (decoding frames is the slow part and takes no lock),
bounded by watermarks read under a moment's write lock, so that every row below them is known
to be committed. Then one transaction locks ``events``, ``raw_frames`` and
``forward_deliveries`` against writes (PostgreSQL: SHARE ROW EXCLUSIVE; SQLite: BEGIN
IMMEDIATE), searches what arrived above the watermarks, deletes, and inserts the
``gdpr_erasures`` row: who asked (an account, or ``cli``), when, how many rows per table, and
the subject only as its salted hash (``ttlp.db.pseudonyms``). A dry run stops after the search
and answers the counts.

Afterwards ``ErasedSubjects`` (in ``Store.write_events``) keeps every erased user out: an
event whose user's hash is in ``gdpr_erasures`` is not stored and counted nowhere (users,
sessions), whatever brings it: a replay of an older session, a bus backlog, or the user coming
back to a stream. GDPR Art. 17 reads as "do not process me any more", so a *live* event of an
erased user is dropped too. What the store cannot refuse: the raw archive keeps frames as they
arrive (it does not decode them), so a later live appearance's frames are archived, their
events refused; the next prune's sweep (``ttlp.db.retention``, step 3b) deletes them, as does
``erase_user`` run again. The rules and forward roles read ``ttlc:events`` themselves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

import msgspec
from loguru import logger
from sqlalchemy import ColumnElement, String, Table, and_, cast, delete, func, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ttlp.aio import as_utc
from ttlp.contracts.events import SYSTEM_USER
from ttlp.contracts.mapping import PACKED_KEY
from ttlp.db import tables
from ttlp.db.engine import write_transaction
from ttlp.db.pseudonyms import SALT_KEY, load_salt, pseudonym_id, subject_hash
from ttlp.errors import InputError, NotFoundError

USER_ID_PATTERN: Final = r"^[1-9][0-9]{0,31}$"
"""A TikTok user id (digits; ``0`` marks events without a user and is never a subject)."""
HANDLE_PATTERN: Final = r"^@?[A-Za-z0-9_.]{1,64}$"
"""A TikTok handle, with or without the ``@``."""
TABLES: Final = (
    "events",
    "raw_frames",
    "forward_deliveries",
    "actions_log",
    "user_notes",
    "users",
)
"""What an erasure deletes from, in the order its counts are shown."""
NAMING_TYPES: Final = ("RAW", "BATTLE")
"""Event types whose payload can name another TikTok user (a RAW event's TikTok message, a
BATTLE's participants); no other UnifiedEvent v1 payload names anybody."""
LOCKED: Final = ("events", "raw_frames", "forward_deliveries")
"""Tables an erasure holds against writes while it searches the last rows and deletes."""
PAGE: Final = 1000
"""Rows read per query while searching (frames are decoded a page at a time, off the loop)."""
CHUNK: Final = 500
"""Row ids per ``DELETE ... WHERE id IN (...)``."""
MAX_VERDICTS: Final = 100_000
"""User ids whose hash ``ErasedSubjects`` remembers (then it starts afresh: a bound)."""
CLI: Final = "cli"
"""``gdpr_erasures.requested_by`` of an erasure made with ``ttlp gdpr erase``."""
NO_USER: Final = SYSTEM_USER.user_id

log = logger.bind(role="gdpr")


class UnknownUserError(NotFoundError):
    """Nothing is stored about the TikTok user an erasure names."""


class AmbiguousHandleError(InputError):
    """A handle that several TikTok users have had: the user id decides."""

    status = 409


# -- finding one user id in what TikTok sent -------------------------------------------------
MIN_BYTES_DIGITS: Final = 10
"""Ids at least this long are also looked for in raw protobuf bytes (as a varint of 5 bytes or
more, or as ASCII), where a shorter one would turn up by chance. TikTok's are ~19 digits."""


def _names_an_id(key: str) -> bool:
    """A key whose value is an id: ``id``, ``userId``, ``toUserId``, ``anchorIds``, ``uid``..."""
    return key in ("id", "uid", "idStr") or key.endswith(("Id", "Ids", "IdStr", "_id", "_ids"))


class UserMatcher:
    """Finds one TikTok user id in decoded messages and stored documents, where an id can be:
    the value of an id field (``user.id``, ``userId``, ``toUserId``...; a number, a decimal
    string, or a list of them) or a map's key (a battle's scores are keyed by user id).

    Other numbers are not looked at (a count or a timestamp can equal a short id), nor is text
    (a chat can quote an id). When the id is long enough (``MIN_BYTES_DIGITS``; TikTok's are)
    map keys count, and protobuf bytes are searched too: the bytes of a type without a schema,
    and fields TikTok added since TikTokLiveProto was built."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.number = int(user_id)
        self._long = len(user_id) >= MIN_BYTES_DIGITS
        self._needles: list[bytes] = []
        if self._long:
            self._needles.append(user_id.encode())
            if self.number < 2**64:
                self._needles.append(_varint(self.number))

    def in_bytes(self, data: bytes) -> bool:
        return any(needle in data for needle in self._needles)

    def is_id(self, value: Any) -> bool:
        """``value`` (an id field's) is the user id, or a list holding it."""
        if isinstance(value, str):
            return value == self.user_id
        if isinstance(value, int) and not isinstance(value, bool):
            return value == self.number
        if isinstance(value, list):
            return any(self.is_id(item) for item in value if not isinstance(item, list))
        return False

    def in_value(self, value: Any) -> bool:
        """Whether a decoded JSON value (or a protobuf message's dict) names the user.

        Protobuf bytes that ingest kept undecoded (``payloadBase64``: a type without a schema)
        are searched as bytes."""
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, item in node.items():
                    if self._long and (key == self.user_id or key == self.number):
                        return True  # a map keyed by user id
                    if isinstance(key, str) and _names_an_id(key) and self.is_id(item):
                        return True
                    if key == PACKED_KEY and isinstance(item, str) and self._in_packed(item):
                        return True
                    if isinstance(item, dict | list | bytes):
                        stack.append(item)
            elif isinstance(node, list):
                stack.extend(item for item in node if isinstance(item, dict | list | bytes))
            elif isinstance(node, bytes) and self.in_bytes(node):
                return True
        return False

    def _in_packed(self, packed: str) -> bool:
        try:
            return self.in_bytes(base64.b64decode(packed, validate=True))
        except (binascii.Error, ValueError):
            return False


def _varint(number: int) -> bytes:
    """``number`` as protobuf writes an int64/uint64 field's value."""
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


FrameCheck = Callable[[UserMatcher, str, str], bool]
"""(the matcher, a frame's raw type, its ``data`` as stored) → whether the frame names the
user: ``ttlp.tiktok.mentions.frame_names_user`` (a package below ``db`` cannot import it)."""


# -- what the store refuses ------------------------------------------------------------------
class _HasUser(Protocol):
    @property
    def user(self) -> Any: ...


_E = TypeVar("_E", bound=_HasUser)


class ErasedSubjects:
    """The users every erasure named, as ``Store.write_events`` checks events against them.

    Only salted hashes are kept (``gdpr_erasures.subject_hash``), so an event's user id is
    hashed with the same salt (``PSEUDONYM_SALT``, else the one in ``ttlp_meta``) once per
    user and the verdict remembered. ``refresh`` re-reads the hashes when
    ``max(gdpr_erasures.id)`` has moved; the store calls it inside its write transaction, after
    its INSERT, which makes the refusal exact: an erasure committed before that INSERT got its
    lock is seen, one still running deletes what the INSERT wrote (see the module docstring).
    With no erasure at all, ``keep`` costs nothing.
    """

    def __init__(self, configured_salt: str | None = None) -> None:
        self._salt: bytes | None = configured_salt.encode() if configured_salt else None
        self._hashes: frozenset[str] = frozenset()
        self._seen: int | None = None
        """``max(gdpr_erasures.id)`` the hashes were read at (None: never read, or none)."""
        self._verdicts: dict[str, bool] = {}
        self._warned = False

    def is_erased(self, user_id: str) -> bool:
        if not self._hashes or user_id == NO_USER or self._salt is None:
            return False
        verdict = self._verdicts.get(user_id)
        if verdict is None:
            if len(self._verdicts) >= MAX_VERDICTS:
                self._verdicts.clear()
            verdict = subject_hash(self._salt, user_id) in self._hashes
            self._verdicts[user_id] = verdict
        return verdict

    def keep(self, events: Sequence[_E]) -> Sequence[_E]:
        """``events`` without those of erased users (the same sequence when nobody is erased)."""
        if not self._hashes:
            return events
        return [event for event in events if not self.is_erased(event.user.user_id)]

    def refresh(self, conn: Connection) -> bool:
        """Read ``max(gdpr_erasures.id)`` on ``conn``; when it moved, read the hashes again.
        True when they were read again (a new erasure: check what was just written).
        Synchronous, as the ``Store``'s write bodies are (``await conn.run_sync(refresh)`` on
        an async connection)."""
        g = tables.gdpr_erasures
        latest = conn.scalar(select(func.max(g.c.id)))
        if latest == self._seen:
            return False
        hashes = frozenset(conn.execute(select(g.c.subject_hash)).scalars())
        if hashes and self._salt is None:
            meta = tables.ttlp_meta
            stored = conn.scalar(select(meta.c.value).where(meta.c.key == SALT_KEY))
            if stored is None:
                self._seen = latest
                if not self._warned:
                    self._warned = True
                    log.error(
                        "GDPR erasures exist but the database keeps no pseudonym salt: they were "
                        "made with PSEUDONYM_SALT set; set the same value here, or erased users' "
                        "events are stored again"
                    )
                return False
            self._salt = bytes.fromhex(stored)
        self._hashes, self._seen = hashes, latest
        self._verdicts.clear()
        return True


# -- the erasure -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Erasure:
    """An erasure's audit row (``gdpr_erasures``), or the counts of a dry run (no id)."""

    id: int | None
    subject_hash: str
    requested_by: str
    erased_at: datetime | None
    rows: dict[str, int]
    """Rows per table (every table of ``TABLES``, zeros included)."""
    total_rows: int
    dry_run: bool = False


@dataclass(frozen=True)
class _Subject:
    user_id: str
    ids: tuple[str, ...]
    """The id, and the pseudonym retention would have given it (users, notes, actions)."""
    hash: str
    erased_before: datetime | None
    """When this user was first erased, if they were (their later sessions are searched)."""


def parse_subject(user_id: str | None, handle: str | None) -> tuple[str | None, str | None]:
    """(user id, handle without ``@``) of an erasure request, exactly one of them set; an
    ``InputError`` saying what is wrong otherwise."""
    if (user_id is None) == (handle is None):
        raise InputError("name the TikTok user by exactly one of: user id, handle")
    if user_id is not None:
        if not re.match(USER_ID_PATTERN, user_id):
            raise InputError(f"{user_id[:40]!r} is not a TikTok user id (digits, not 0)")
        return user_id, None
    assert handle is not None
    if not re.match(HANDLE_PATTERN, handle):
        raise InputError(f"{handle[:70]!r} is not a TikTok handle (letters, digits, _ and .)")
    return None, handle.removeprefix("@")


async def erase_user(
    engine: AsyncEngine,
    names_in_frame: FrameCheck,
    *,
    user_id: str | None = None,
    handle: str | None = None,
    requested_by: str,
    pseudonym_salt: str | None,
    dry_run: bool = False,
) -> Erasure:
    """Erase one TikTok user, named by ``user_id`` or ``handle`` (case-insensitive, with or
    without ``@``), from every table (see the module docstring); the ``gdpr_erasures`` row.

    ``pseudonym_salt``: ``PSEUDONYM_SALT`` (None: the database's). ``dry_run``: count only.
    Raises ``UnknownUserError`` (404) when nothing is stored about the user,
    ``AmbiguousHandleError`` (409) for a handle several users have had, ``InputError`` for an
    id or handle that cannot be one."""
    user_id, handle = parse_subject(user_id, handle)
    salt = await load_salt(engine, pseudonym_salt)
    async with engine.connect() as conn:
        subject = await _resolve(conn, salt, user_id, handle)
    search = _Search(subject, names_in_frame)
    marks = await _watermarks(engine)
    async with engine.connect() as conn:
        await search.run(conn, marks)
        counts = await search.apply(conn, dry_run=True)
    total = sum(counts.values())
    if not total:
        raise UnknownUserError(_nothing_stored(subject, user_id, handle))
    if dry_run:
        return Erasure(None, subject.hash, requested_by, None, counts, total, dry_run=True)
    async with _locked(engine) as conn:
        await search.run(conn, marks, final=True)
        counts = await search.apply(conn, dry_run=False)
        total = sum(counts.values())
        erased_at = datetime.now(UTC)
        g = tables.gdpr_erasures
        erasure_id = await conn.scalar(
            insert(g)
            .values(
                subject_hash=subject.hash,
                requested_by=requested_by,
                erased_at=erased_at,
                rows=counts,
                total_rows=total,
            )
            .returning(g.c.id)
        )
    assert erasure_id is not None
    log.info("TikTok user erased", erasure=erasure_id, requested_by=requested_by, rows=total)
    return Erasure(int(erasure_id), subject.hash, requested_by, erased_at, counts, total)


async def list_erasures(engine: AsyncEngine, limit: int | None = None) -> list[Erasure]:
    """The audit rows, newest first."""
    g = tables.gdpr_erasures
    query = select(g).order_by(g.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Erasure(
            id=int(row.id),
            subject_hash=row.subject_hash,
            requested_by=row.requested_by,
            erased_at=as_utc(row.erased_at),
            rows={name: int(row.rows.get(name, 0)) for name in TABLES},
            total_rows=int(row.total_rows),
        )
        for row in rows
    ]


def _nothing_stored(subject: _Subject, user_id: str | None, handle: str | None) -> str:
    who = f"TikTok user {user_id}" if user_id is not None else f"TikTok user @{handle}"
    if subject.erased_before is not None:
        return f"{who} was erased before: nothing about them is stored since"
    return f"nothing is stored about {who}"


async def _resolve(
    conn: AsyncConnection, salt: bytes, user_id: str | None, handle: str | None
) -> _Subject:
    if user_id is None:
        assert handle is not None
        u = tables.users
        found = (
            await conn.execute(
                select(u.c.user_id)
                .where(func.lower(u.c.unique_id) == handle.lower(), u.c.pseudonymized_at.is_(None))
                .distinct()
                .limit(10)
            )
        ).scalars()
        ids = sorted(str(i) for i in found)
        if not ids:
            raise UnknownUserError(
                f"no TikTok user @{handle} is known (a handle can change: erase by user id)"
            )
        if len(ids) > 1:
            raise AmbiguousHandleError(
                f"@{handle} has been the handle of {len(ids)} TikTok users ({', '.join(ids)}): "
                "erase by user id"
            )
        user_id = ids[0]
    g = tables.gdpr_erasures
    hashed = subject_hash(salt, user_id)
    first = await conn.scalar(select(func.min(g.c.erased_at)).where(g.c.subject_hash == hashed))
    return _Subject(
        user_id=user_id,
        ids=(user_id, pseudonym_id(salt, user_id)),
        hash=hashed,
        erased_before=as_utc(first) if first is not None else None,
    )


@dataclass
class _Search:
    """What names one user, found in two passes: below the watermarks (read-only, before the
    transaction), then above them (inside it, with writes held). The expensive parts, decoding
    frames and reading event documents, are done once per row; the indexed ones (the user's
    own events, notes, users, actions) are asked again in the transaction."""

    subject: _Subject
    names_in_frame: FrameCheck
    matcher: UserMatcher = field(init=False)
    named: dict[int, str] = field(default_factory=dict)
    """Other users' events that name the subject: row id → event id."""
    frames: set[int] = field(default_factory=set)
    deliveries: set[int] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    """Sessions whose frames below the watermark were searched."""

    def __post_init__(self) -> None:
        self.matcher = UserMatcher(self.subject.user_id)

    async def run(self, conn: AsyncConnection, marks: dict[str, int], final: bool = False) -> None:
        """Search below ``marks`` (first pass) or above them (``final``)."""
        e, d = tables.events, tables.forward_deliveries
        ids = list(self.subject.ids)

        def window(table: str) -> tuple[int, int | None]:
            return (marks[table], None) if final else (0, marks[table])

        like = f"%{self.subject.user_id}%"
        query = select(e.c.id, e.c.event_id, e.c.event_data).where(
            e.c.event_type.in_(NAMING_TYPES),
            e.c.user_id.not_in(ids),
            cast(e.c.event_data, String).like(like),
        )
        async for row in _pages(conn, query, e.c.id, window("events"), not final):
            if self.matcher.in_value(row.event_data):
                self.named[row.id] = row.event_id
        query = select(d.c.id, d.c.event_data).where(d.c.event_data.like(like))
        async for row in _pages(conn, query, d.c.id, window("forward_deliveries"), not final):
            if self.matcher.in_value(_json_or_none(row.event_data)):
                self.deliveries.add(row.id)
        for session_id in sorted(await self._sessions(conn)):
            if not final:
                await self._search_frames(conn, session_id, window("raw_frames"), final)
                self.sessions.add(session_id)
            else:  # a session found only now: its frames below the watermark too
                low = marks["raw_frames"] if session_id in self.sessions else 0
                await self._search_frames(conn, session_id, (low, None), final)

    async def _sessions(self, conn: AsyncConnection) -> set[str]:
        """The sessions of the user's events and of the events naming them, the sessions since
        their first erasure, and the replays of all of these (and of the replays)."""
        e, s = tables.events, tables.sessions
        seeds = set(
            (
                await conn.execute(
                    select(e.c.session_id).where(e.c.user_id.in_(self.subject.ids)).distinct()
                )
            ).scalars()
        )
        for chunk in _chunks(sorted(self.named)):
            query = select(e.c.session_id).where(e.c.id.in_(chunk)).distinct()
            seeds.update((await conn.execute(query)).scalars())
        if self.subject.erased_before is not None:
            since = or_(s.c.ended_at.is_(None), s.c.ended_at >= self.subject.erased_before)
            seeds.update((await conn.execute(select(s.c.id).where(since))).scalars())
        replays: dict[str, list[str]] = {}
        for row in await conn.execute(select(s.c.id, s.c.meta).where(s.c.type == "replay")):
            source = row.meta.get("replayedFrom") if isinstance(row.meta, dict) else None
            if isinstance(source, str):
                replays.setdefault(source, []).append(row.id)
        found, todo = set(seeds), list(seeds)
        while todo:
            for child in replays.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    async def _search_frames(
        self, conn: AsyncConnection, session_id: str, window: tuple[int, int | None], final: bool
    ) -> None:
        f = tables.raw_frames
        query = select(f.c.id, f.c.type, f.c.data).where(f.c.session_id == session_id)
        page: list[Any] = []
        async for row in _pages(conn, query, f.c.id, window, not final):
            page.append(row)
            if len(page) == PAGE:
                self.frames.update(await asyncio.to_thread(self._naming, page))
                page = []
        if page:
            self.frames.update(await asyncio.to_thread(self._naming, page))

    def _naming(self, rows: list[Any]) -> list[int]:
        return [row.id for row in rows if self.names_in_frame(self.matcher, row.type, row.data)]

    def _conditions(self) -> dict[str, list[ColumnElement[bool]]]:
        """Per table, disjoint conditions whose rows the erasure deletes."""
        e, f, d = tables.events, tables.raw_frames, tables.forward_deliveries
        a, n, u = tables.actions_log, tables.user_notes, tables.users
        ids = list(self.subject.ids)
        named_ids = sorted(set(self.named.values()))
        return {
            "events": [e.c.user_id.in_(ids), *(e.c.id.in_(c) for c in _chunks(sorted(self.named)))],
            "raw_frames": [f.c.id.in_(c) for c in _chunks(sorted(self.frames))],
            "forward_deliveries": [d.c.id.in_(c) for c in _chunks(sorted(self.deliveries))],
            "actions_log": [
                a.c.user_id.in_(ids),
                *(and_(a.c.event_id.in_(c), a.c.user_id.not_in(ids)) for c in _chunks(named_ids)),
            ],
            "user_notes": [n.c.user_id.in_(ids)],
            "users": [u.c.user_id.in_(ids)],
        }

    async def apply(self, conn: AsyncConnection, *, dry_run: bool) -> dict[str, int]:
        """Delete what was found (``dry_run``: count it); rows per table."""
        counts: dict[str, int] = {}
        for name, conditions in self._conditions().items():
            table: Table = tables.metadata.tables[name]
            total = 0
            for condition in conditions:
                if dry_run:
                    query = select(func.count()).select_from(table).where(condition)
                    total += int(await conn.scalar(query) or 0)
                else:
                    total += (await conn.execute(delete(table).where(condition))).rowcount
            counts[name] = total
        return counts


async def _pages(
    conn: AsyncConnection, query: Any, key: Any, window: tuple[int, int | None], release: bool
) -> AsyncIterator[Any]:
    """The rows of ``query`` with ``after < key <= until`` (no upper bound: None), keyset-paged
    on ``key`` so that no query holds a table's worth of rows. ``release``: end the read
    transaction after each page (the first pass decodes for long; PostgreSQL should not keep
    its snapshot meanwhile)."""
    after, until = window
    while True:
        page = query.where(key > after)
        if until is not None:
            page = page.where(key <= until)
        rows = (await conn.execute(page.order_by(key).limit(PAGE))).all()
        if release:
            await conn.commit()
        for row in rows:
            yield row
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


_json: Final = msgspec.json.Decoder()


def _json_or_none(text: str) -> Any:
    try:
        return _json.decode(text)
    except msgspec.DecodeError:
        return None


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def _watermarks(engine: AsyncEngine) -> dict[str, int]:
    """``max(id)`` of each table the search reads by id, taken while no write to them is in
    flight: every row at or below is committed, every later row will be above (PostgreSQL
    hands out ids before commit, so a later commit can carry a lower id than one already
    visible: without the lock, such a row would fall between the passes)."""
    async with _locked(engine) as conn:
        return {
            name: int(await conn.scalar(select(func.max(tables.metadata.tables[name].c.id))) or 0)
            for name in LOCKED
        }


def _locked(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A transaction no write of ``LOCKED`` interleaves with (reads go on; two erasures
    queue)."""
    return write_transaction(engine, lock=LOCKED)
