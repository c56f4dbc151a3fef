"""``ttlp dlq list|show|retry|purge`` as an operator runs them, in a process of their own beside
(or after) a ``ttlp run``, on the embedded default and on Redis + PostgreSQL.

``ttlp run`` reads a fixture of good frames, every malformed case of ``dlq-frames.ndjson``
(published verbatim by the mock) and one long chat message, with MAX_FRAME_BYTES set too low
for that message: it dead-letters the malformed frames and the long one. The CLI lists and
shows them, retries one while ttlp runs (the normalizer reads it again: a new letter), retries
the long message while ttlp is stopped, and after a restart with the default MAX_FRAME_BYTES
(the cause fixed) that message is stored as an event; the letters survive the restart. A letter
whose payload was cut cannot be retried, and says so. Unknown stages and ids are errors that
name them, and change nothing. A forward target that failed is delivered once the receiver is
healthy and its letters are retried.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fakes.receiver import Receiver, Reply, Request
from tests.support.paths import FIXTURES
from tests.support.processes import Ttlp
from tests.support.wait import wait_for
from ttlp.bus import dlq
from ttlp.bus.base import Bus, parse_id
from ttlp.bus.keys import Keys
from ttlp.bus.memory import MemoryBus
from ttlp.bus.redis import RedisBus
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.tables import events, forward_deliveries
from ttlp.forward.store import ForwardStore
from ttlp.runtime import keep_dead_letters

pytestmark = pytest.mark.e2e

CASES = [json.loads(line) for line in (FIXTURES / "dlq-frames.ndjson").read_text().splitlines()]
LONG_CHAT = "long-chat"
LONG_SEQ = 7441000000999999999
TOO_LOW = "4096"
"""MAX_FRAME_BYTES of the first run: every fixture frame fits but the long chat message."""


@dataclass
class Backend:
    """What the test reads the outcome through: ttlp's own bus and database objects."""

    name: str
    ttlp: Ttlp
    bus: Bus
    keys: Keys
    engine: AsyncEngine

    async def letters(self) -> list[dlq.Letter]:
        return await dlq.letters(self.bus, self.keys)

    async def by_case(self) -> dict[str, dlq.Letter]:
        """The letters of the malformed fixture cases, by case (the newest of each)."""
        seq_to_case = {case["fields"].get("seqNo"): case["case"] for case in CASES}
        seq_to_case[str(LONG_SEQ)] = LONG_CHAT
        out: dict[str, dlq.Letter] = {}
        for letter in await self.letters():
            body = letter.body
            if letter.truncated:  # only the 1.1 MB frame is past DLQ_MAX_PAYLOAD_BYTES
                out["frame-too-large"] = letter
            elif isinstance(body, dict) and body.get("seqNo") in seq_to_case:
                out[seq_to_case[body["seqNo"]]] = letter
        return out

    async def events_with_seq(self, seq_no: int) -> int:
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(events).where(events.c.seq_no == seq_no)
            )
        return int(count or 0)

    async def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``ttlp dlq *args`` in a process of its own, off the event loop."""
        return await asyncio.to_thread(
            self.ttlp.run, "dlq", *args, timeout=60, stdin=stdin, COLUMNS="250"
        )


@pytest.fixture(params=["embedded", "redis"])
def runner(request: pytest.FixtureRequest, ttlp: Ttlp) -> Ttlp:
    """``ttlp`` on the embedded default (SQLite migrated first, so the test can write to it),
    or on Redis + PostgreSQL."""
    if request.param == "redis":
        services: Ttlp = request.getfixturevalue("services")
        return services
    migrated = ttlp.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    return ttlp


@pytest.fixture
async def backend(runner: Ttlp, key_prefix: str, tmp_path: Path) -> AsyncIterator[Backend]:
    keys = Keys(key_prefix)
    url = normalize_database_url(runner.env.get("DATABASE_URL"), Path(runner.env["TTLP_DATA_DIR"]))
    engine = create_engine(url)
    bus: Bus
    if "REDIS_URL" in runner.env:
        bus, name = RedisBus(runner.env["REDIS_URL"]), "redis"
    else:
        bus, name = MemoryBus(), "embedded"
        keep_dead_letters(bus, keys, engine)  # what `ttlp dlq` does: the letters are in SQLite
    try:
        yield Backend(name, runner, bus, keys, engine)
    finally:
        await bus.close()
        await engine.dispose()


def malformed_fixture(path: Path) -> Path:
    """The bundled good frames, a chat message of 5,000 characters (a valid frame larger than
    ``TOO_LOW``), then every malformed case as ``{"fields": ...}`` (published verbatim)."""
    good = (FIXTURES / "raw-frames.ndjson").read_text().splitlines()
    chat = json.loads(next(line for line in good if '"type":"WebcastChatMessage"' in line))
    chat["seqNo"] = LONG_SEQ
    chat["data"]["common"]["msgId"] = str(LONG_SEQ)
    chat["data"]["content"] = "long " * 1000
    bad = [json.dumps({"fields": case["fields"]}) for case in CASES]
    path.write_text("\n".join([*good, json.dumps(chat), *bad]) + "\n")
    return path


def ids_in(text: str) -> list[str]:
    return re.findall(r"\b\d{13}-\d+\b", text)


async def test_dead_letters_listed_shown_retried_across_a_restart_and_purged(
    backend: Backend, tmp_path: Path
) -> None:
    ttlp = backend.ttlp
    fixture = malformed_fixture(tmp_path / "frames.ndjson")
    run = ttlp.start("run", MOCK_FIXTURE=str(fixture), MAX_FRAME_BYTES=TOO_LOW)
    total = len(CASES) + 1
    letters = await wait_for(
        lambda: _when(backend.by_case(), lambda found: len(found) == total),
        what=f"{total} dead letters",
        alive=run,
    )
    assert {case: letter.reason for case, letter in letters.items()} == {
        LONG_CHAT: "FRAME_TOO_LARGE",
        **{case["case"]: case["expectedReason"] for case in CASES},
    }

    # list: every letter with its id; --stage and --limit; an unknown stage is an error.
    listed = await backend.cli("list", "--limit", "100")
    assert listed.returncode == 0, listed.stderr
    assert sorted(ids_in(listed.stdout)) == sorted(x.id for x in letters.values())
    assert f"{total} dead letters, newest first" in listed.stdout
    for reason in ("PARSE_ERROR", "VALIDATION_ERROR", "FRAME_TOO_LARGE"):
        assert reason in listed.stdout
    newest = await backend.cli("list", "--stage", "normalizer", "--limit", "3")
    assert newest.returncode == 0, newest.stderr
    assert f"{total} dead letters of stage normalizer, the newest 3" in newest.stdout
    assert len(ids_in(newest.stdout)) == 3
    bogus = await backend.cli("list", "--stage", "bogus")
    assert bogus.returncode == 2
    assert "'bogus' is not one of 'normalizer', 'store', 'rules', 'forwarder', 'ingest'" in (
        bogus.stderr
    )

    # show: one letter in full.
    letter = letters["data-not-json"]
    shown = await backend.cli("show", letter.id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"dead letter {letter.id} in {backend.keys.dlq}" in out
    for name, value in letter.fields.items():
        if name != "payload":
            assert re.search(rf"^  {name} +{re.escape(value)}", out, re.M), (name, out)
    assert "payload (JSON):" in out
    assert '  "type": "WebcastChatMessage",' in out  # decoded and indented
    for wrong, says in (("1-0", "no dead letter 1-0"), ("abc", "not a dead-letter id: abc")):
        missing = await backend.cli("show", wrong)
        assert missing.returncode == 2
        assert says in missing.stderr

    # retry while ttlp runs: the frame goes back to ttlc:raw, the normalizer reads it again and
    # (it is as broken as before) dead-letters it anew.
    gift = letters["gift-repeat-count-not-number"]
    retried = await backend.cli("retry", gift.id)
    assert retried.returncode == 0, retried.stderr
    assert "1 dead letter retried" in retried.stdout
    case = "gift-repeat-count-not-number"
    anew = await wait_for(
        lambda: _when(
            backend.by_case(), lambda found: parse_id(found[case].id) > parse_id(gift.id)
        ),
        what="the retried frame dead-lettered again",
        alive=run,
    )
    assert gift.id not in [x.id for x in await backend.letters()]

    # Unknown ids and stages are errors naming them; nothing happens.
    before = sorted(x.id for x in await backend.letters())
    for args, says in (
        (("retry", "1-0", anew["data-is-array"].id), "no dead letter 1-0"),
        (("retry", "--stage", "bogus"), "'bogus' is not one of"),
        (("retry",), "give entry ids, --stage or --all"),
        (("retry", "--all", letter.id), "give entry ids or --all, not both"),
        (("purge", "1-0", "--yes"), "no dead letter 1-0"),
    ):
        refused = await backend.cli(*args)
        assert refused.returncode == 2, (args, refused.stdout)
        assert says in refused.stderr, (args, refused.stderr)
        assert "retried" not in refused.stdout
    assert sorted(x.id for x in await backend.letters()) == before

    assert ttlp.stop(run, signal.SIGINT) == 0, ttlp.log_of(run)[-3000:]
    # The letters survive the restart (on the embedded default: in SQLite).
    assert sorted(x.id for x in await backend.letters()) == before

    # A letter whose payload was cut (the 1.1 MB frame, past DLQ_MAX_PAYLOAD_BYTES) stays.
    cut = anew["frame-too-large"]
    stays = await backend.cli("retry", cut.id)
    assert stays.returncode == 1
    assert f"{cut.id} stays in the queue: the payload was cut at DLQ_MAX_PAYLOAD_BYTES" in (
        stays.stdout
    )
    assert "retried" not in stays.stdout

    # The long message, retried while ttlp is stopped: on Redis it waits in ttlc:raw; on the
    # embedded default it is queued in the database for the next start.
    large = anew[LONG_CHAT]
    queued = await backend.cli("retry", large.id)
    assert queued.returncode == 0, queued.stderr
    if backend.name == "embedded":
        assert "1 dead letter queued for retry" in queued.stdout
        assert "when `ttlp run` starts" in queued.stdout
        relisted = await backend.cli("list", "--limit", "100")
        assert f"(retry queued) {large.fields['rawType']}" in relisted.stdout
    else:
        assert "1 dead letter retried" in queued.stdout
    assert await backend.events_with_seq(LONG_SEQ) == 0

    # The cause fixed (MAX_FRAME_BYTES back to its default), the message is stored as an event.
    # The mock reads only good frames this time: no new letters.
    run = ttlp.start("run")
    await wait_for(
        lambda: backend.events_with_seq(LONG_SEQ),
        what="the long message stored after the fix",
        alive=run,
    )
    remaining = await backend.letters()
    assert large.id not in [x.id for x in remaining]
    assert len(remaining) == total - 1

    # purge: asks first; by id; everything.
    declined = await backend.cli("purge", "--stage", "normalizer", stdin="n\n")
    assert declined.returncode == 0, declined.stderr
    assert f"delete {len(remaining)} dead letters (normalizer {len(remaining)})?" in (
        declined.stdout
    )
    assert "nothing deleted" in declined.stdout
    assert len(await backend.letters()) == len(remaining)
    one = await backend.cli("purge", remaining[0].id, "--yes")
    assert one.returncode == 0, one.stderr
    assert "1 dead letter deleted" in one.stdout
    everything = await backend.cli("purge", "--all", "--yes")
    assert everything.returncode == 0, everything.stderr
    assert f"{len(remaining) - 1} dead letters deleted" in everything.stdout
    assert await backend.letters() == []
    empty = await backend.cli("list")
    assert empty.returncode == 0, empty.stderr
    assert f"no dead letters in {backend.keys.dlq}" in empty.stdout
    nothing = await backend.cli("retry", "--all")
    assert nothing.returncode == 0, nothing.stderr
    assert f"nothing to retry: {backend.keys.dlq} holds no dead letters" in nothing.stdout
    assert ttlp.stop(run, signal.SIGINT) == 0, ttlp.log_of(run)[-3000:]
    assert "Traceback" not in ttlp.log_of(run)


async def test_forwarder_letters_are_delivered_once_the_receiver_is_healthy(
    backend: Backend,
) -> None:
    healthy = False

    def receiver(_: Request) -> Reply:
        return Reply(200) if healthy else Reply(500)

    async with Receiver(receiver) as rx:
        target = await ForwardStore(backend.engine).create_target(
            {
                "name": "hook",
                "url": rx.url,
                "secret": "s" * 32,
                "event_types": ["FOLLOW", "SHARE"],
                "scope": "*",
                "enabled": True,
                "created_by": "e2e",
            }
        )
        run = backend.ttlp.start("run", WEBHOOK_ALLOWLIST="127.0.0.1", FORWARD_MAX_ATTEMPTS="2")

        async def dead_lettered() -> list[dlq.Letter]:
            found = [x for x in await backend.letters() if x.stage == "forwarder"]
            return found if len(found) == 2 else []

        letters = await wait_for(dead_lettered, what="two forwarder dead letters", alive=run)
        assert len(rx.requests) == 4  # two attempts each
        listed = await backend.cli("list", "--stage", "forwarder")
        assert f"target {target.id}, FOLLOW" in listed.stdout
        assert f"target {target.id}, SHARE" in listed.stdout
        shown = await backend.cli("show", letters[0].id)
        assert '"targetId": ' in shown.stdout
        assert "its event decoded" in shown.stdout, shown.stdout

        healthy = True
        retried = await backend.cli("retry", "--stage", "forwarder")
        assert retried.returncode == 0, retried.stderr
        assert "2 dead letters retried" in retried.stdout

        async def delivered() -> bool:
            async with backend.engine.connect() as conn:
                statuses = (await conn.execute(select(forward_deliveries.c.status))).scalars()
                return sorted(statuses) == ["delivered", "delivered"]

        await wait_for(delivered, what="the retried deliveries", alive=run)
        assert len(rx.requests) == 6
        assert await backend.letters() == []
        assert backend.ttlp.stop(run, signal.SIGINT) == 0


def test_dlq_works_before_ttlp_ever_ran(ttlp: Ttlp) -> None:
    """The embedded default with nothing there yet: an empty list, not an error."""
    result = ttlp.run("dlq", "list")
    assert result.returncode == 0, result.stderr
    assert "no dead letters in" in result.stdout


async def _when(found: Any, done: Any) -> Any:
    """``found`` (awaited) when ``done(found)`` holds, else None (for ``wait_for``)."""
    value = await found
    try:
        return value if done(value) else None
    except KeyError:
        return None
