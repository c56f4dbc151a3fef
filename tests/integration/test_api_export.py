"""``GET /sessions/{id}/export``: a session as a download, on both backends.

The fixture session's events are stored and its raw frames archived; every format's body is
read back and compared with them (never with typed-in values).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from sqlalchemy import update

from tests.support.api import OTHER_HANDLE, STREAMER_HANDLE, ApiHarness, fixture_events
from tests.support.paths import FIXTURES
from ttlp.api.accounts import Role
from ttlp.api.routes import export as export_route
from ttlp.contracts.events import decode_event, decode_raw_frame, encode
from ttlp.db import export as ex
from ttlp.db.tables import events, raw_frames

pytestmark = pytest.mark.integration

EVENTS = fixture_events()
SESSION = EVENTS[0].session_id
RAW_LINES = [
    line for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines() if line.strip()
]


def as_dict(struct: Any) -> Any:
    return json.loads(encode(struct))


async def seeded(api: ApiHarness) -> None:
    await api.seed()
    await api.store.archive_frames([decode_raw_frame(line) for line in RAW_LINES])


async def download(
    api: ApiHarness, headers: dict[str, str], fmt: str = "ndjson", session: str = SESSION
) -> Any:
    return await api.client.get(
        f"/sessions/{session}/export", params={"format": fmt}, headers=headers
    )


async def test_each_format_downloads_the_session_as_stored(api: ApiHarness) -> None:
    await seeded(api)
    headers = await api.login("luna", Role.STREAMER)
    formats = ["ndjson", "csv", "raw"] + (["parquet"] if ex.pyarrow_available() else [])
    for fmt in formats:
        response = await download(api, headers, fmt)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(ex.MEDIA_TYPES[fmt].split(";")[0])
        assert response.headers["content-disposition"] == (
            f'attachment; filename="ttlp-session-{SESSION}{ex.SUFFIXES[fmt]}"'
        )
        body = response.content
        if fmt == "ndjson":
            lines = body.decode().splitlines()
            assert [as_dict(decode_event(line)) for line in lines] == [as_dict(e) for e in EVENTS]
        elif fmt == "raw":
            frames = [decode_raw_frame(line) for line in body.decode().splitlines()]
            assert [as_dict(f) for f in frames] == [json.loads(line) for line in RAW_LINES]
        elif fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
            assert tuple(rows[0]) == ex.CSV_COLUMNS
            assert [r["event_id"] for r in rows] == [e.event_id for e in EVENTS]
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(body))
            assert table.column_names == [*ex.CSV_COLUMNS, "event"]
            stored = [json.loads(doc) for doc in table.column("event").to_pylist()]
            assert stored == [as_dict(e) for e in EVENTS]


async def test_a_moderator_downloads_a_viewer_is_refused(api: ApiHarness) -> None:
    await seeded(api)
    moderator = await api.login("mod", Role.MODERATOR)
    viewer = await api.login("viewer", Role.VIEWER)
    assert (await download(api, moderator, "csv")).status_code == 200
    refused = await download(api, viewer, "csv")
    assert refused.status_code == 403
    assert refused.json()["status_code"] == 403
    assert "MODERATOR" in refused.json()["detail"]
    assert "content-disposition" not in refused.headers


async def test_scope_unknown_session_bad_format_and_no_login(api: ApiHarness) -> None:
    await seeded(api)
    other = await api.login("other", Role.STREAMER, [OTHER_HANDLE])
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    outside = await download(api, other)
    assert outside.status_code == 403
    assert outside.json()["detail"] == "this stream is outside your account's scope"
    unknown = await download(api, luna, session="00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "status_code": 404,
        "detail": "no session 00000000-0000-4000-8000-000000000000",
    }
    bad = await download(api, luna, "xlsx")
    assert bad.status_code == 400
    assert bad.json()["status_code"] == 400
    assert "format" in json.dumps(bad.json())
    anonymous = await api.client.get(f"/sessions/{SESSION}/export")
    assert anonymous.status_code == 401
    assert anonymous.json()["status_code"] == 401


async def test_parquet_without_pyarrow_is_501(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seeded(api)
    headers = await api.login("luna", Role.STREAMER)
    monkeypatch.setattr(export_route.ex, "pyarrow_available", lambda: False)
    response = await download(api, headers, "parquet")
    assert response.status_code == 501
    assert response.json() == {"status_code": 501, "detail": ex.PYARROW_MISSING}


async def test_archived_rows_are_left_out(api: ApiHarness) -> None:
    await seeded(api)
    headers = await api.login("luna", Role.STREAMER)
    hidden = {e.event_id for e in EVENTS if e.__struct_config__.tag == "CHAT"}
    hidden_frames = {msgspec.json.decode(line)["seqNo"] for line in RAW_LINES[:10]}
    now = datetime.now(UTC)
    async with api.engine.begin() as conn:
        await conn.execute(
            update(events).where(events.c.event_id.in_(hidden)).values(archived_at=now)
        )
        await conn.execute(
            update(raw_frames).where(raw_frames.c.seq_no.in_(hidden_frames)).values(archived_at=now)
        )
    assert hidden
    shown = (await download(api, headers)).content.decode().splitlines()
    assert [decode_event(line).event_id for line in shown] == [
        e.event_id for e in EVENTS if e.event_id not in hidden
    ]
    frames = (await download(api, headers, "raw")).content.decode().splitlines()
    assert [decode_raw_frame(line).seq_no for line in frames] == [
        msgspec.json.decode(line)["seqNo"] for line in RAW_LINES[10:]
    ]
