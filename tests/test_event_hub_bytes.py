"""Each subscriber's buffer is bounded in bytes, not only in entries (issue 15, finding 8)."""

from __future__ import annotations

import asyncio

import grpc
import redis.asyncio as aioredis

from claudebench.events.hub import EventHub
from claudebench.keys import Keyspace


async def test_a_subscriber_that_holds_too_many_bytes_is_ended(
    redis_server_url: str, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    hub = EventHub(redis_server_url, keys.events, block_ms=100)
    await hub.start()
    try:
        # Room for 1000 entries, but only ~3 of 40 KB.
        subscription = await hub.subscribe(lambda fields: True, capacity=1000, max_bytes=120_000)
        for i in range(10):
            await redis_client.xadd(
                keys.events, {"type": "created", "task_id": f"t-{i}", "task": "x" * 40_000}
            )
        for _ in range(500):
            if subscription.ended is not None:
                break
            await asyncio.sleep(0.01)
        assert subscription.ended is not None
        code, message = subscription.ended
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "120000 bytes behind" in message
        assert subscription.buffered_bytes <= 120_000
        assert len(subscription.buffer) == 2
        subscription.pop()
        subscription.pop()
        assert subscription.buffered_bytes == 0
    finally:
        await hub.close()
