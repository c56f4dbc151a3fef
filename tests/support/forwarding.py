"""The forwarder under test (``tests/integration/test_forward.py``,
``test_api_forward_ui.py``): a ``Rig`` that runs it in burst mode against the API harness, the
fixture's events by type, and the delivery rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Final

import pytest
from sqlalchemy import select

from tests.support.api import STREAMER_HANDLE, ApiHarness, fixture_events
from tests.support.wait import wait_for
from ttlp.api.accounts import Role
from ttlp.contracts.events import UnifiedEvent
from ttlp.db.tables import forward_deliveries
from ttlp.forward import dispatcher
from ttlp.forward.dispatcher import Forwarder
from ttlp.forward.outbound import Outbound
from ttlp.forward.store import ForwardStore

ALLOW_LOOPBACK: Final = {"WEBHOOK_ALLOWLIST": "127.0.0.1", "FORWARD_MAX_ATTEMPTS": 3}
"""The api_env of forwarding tests: receivers listen on 127.0.0.1."""
WAIT_S: Final = 20.0
POLL_S: Final = 0.02


def events(n: int, event_type: str = "CHAT") -> list[UnifiedEvent]:
    """The fixture's first ``n`` events of ``event_type``."""
    chosen = [e for e in fixture_events() if e.__struct_config__.tag == event_type]
    assert len(chosen) >= n
    return chosen[:n]


class Rig:
    """A forwarder driven by the consume loop in burst mode, its workers running as tasks.
    With ``monkeypatch``, ``steps[target_id]`` counts the steps each target's worker takes."""

    def __init__(
        self,
        api: ApiHarness,
        outbound: Outbound | None = None,
        *,
        monkeypatch: pytest.MonkeyPatch | None = None,
    ) -> None:
        self.api = api
        self.steps: Counter[int] = Counter()
        if monkeypatch is not None:
            step = dispatcher.TargetWorker._step
            steps = self.steps

            async def counted(worker: dispatcher.TargetWorker) -> None:
                await step(worker)
                steps[worker.target.id] += 1

            monkeypatch.setattr(dispatcher.TargetWorker, "_step", counted)
        self.forwarder = Forwarder(
            ForwardStore(api.engine),
            api.bus,
            api.ctx.settings,
            dlq_stream=api.keys.dlq,
            events_stream=api.keys.events,
            outbound=outbound,
            retry_base_s=0.01,
            retry_max_s=0.05,
        )
        self.consumer = api.ctx.consumer(
            stream=api.keys.events,
            group="forwarder",
            handler=self.forwarder.handle,
            stage="forwarder",
        )

    async def __aenter__(self) -> Rig:
        await self.forwarder.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.forwarder.close(grace_s=2)

    async def send(self, evs: list[UnifiedEvent]) -> None:
        for event in evs:
            await self.api.publish(event)
        await self.forwarder.targets(force=True)
        await self.consumer.run_until_idle()

    async def rows(self, target_id: int | None = None) -> list[dict[str, Any]]:
        return await delivery_rows(self.api, target_id)

    async def wait_rows(
        self, what: str, check: Callable[[list[dict[str, Any]]], bool], target_id: int | None = None
    ) -> list[dict[str, Any]]:
        async def ready() -> list[dict[str, Any]] | None:
            rows = await self.rows(target_id)
            return rows if check(rows) else None

        found: list[dict[str, Any]] = await wait_for(ready, what=what, timeout=WAIT_S, poll=POLL_S)
        return found


async def delivery_rows(api: ApiHarness, target_id: int | None = None) -> list[dict[str, Any]]:
    query = select(forward_deliveries).order_by(forward_deliveries.c.id)
    if target_id is not None:
        query = query.where(forward_deliveries.c.target_id == target_id)
    async with api.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def create_target(api: ApiHarness, url: str, **extra: Any) -> dict[str, Any]:
    """A target of ``url`` for the fixture's streamer, created through the API (201)."""
    headers = await api.login("boss", Role.STREAMER, [STREAMER_HANDLE])
    body = {"name": "hook", "url": url, "scope": STREAMER_HANDLE, **extra}
    response = await api.client.post("/forward/targets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data
