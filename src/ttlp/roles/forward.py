"""forward: ``ttlc:events`` (group ``forwarder``) → delivery rows → HTTP targets; exhausted
deliveries → ``ttlc:dlq`` (stage ``forwarder``)."""

from __future__ import annotations

import asyncio

from ttlp.bus import keys
from ttlp.forward.dispatcher import STAGE, Forwarder
from ttlp.forward.store import ForwardStore
from ttlp.runtime import Context


def make_forwarder(ctx: Context, **kwargs: object) -> Forwarder:
    if ctx.engine is None:
        raise RuntimeError("the forward role needs the database")
    return Forwarder(
        ForwardStore(ctx.engine),
        ctx.bus,
        ctx.settings,
        dlq_stream=ctx.keys.dlq,
        events_stream=ctx.keys.events,
        **kwargs,  # type: ignore[arg-type]
    )


async def run(ctx: Context, stop: asyncio.Event) -> None:
    forwarder = make_forwarder(ctx)
    await forwarder.start()  # workers resume the pending deliveries left by the last run
    consumer = ctx.consumer(
        stream=ctx.keys.events, group=keys.GROUP_FORWARDER, handler=forwarder.handle, stage=STAGE
    )
    refresh = asyncio.create_task(forwarder.refresh_forever(stop), name="forward-targets")
    try:
        await consumer.run(stop)
    finally:
        refresh.cancel()
        await asyncio.gather(refresh, return_exceptions=True)
        await forwarder.close(ctx.settings.grace_period_s)
