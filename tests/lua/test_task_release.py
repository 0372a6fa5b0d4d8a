"""TASK_RELEASE: back to pending at the original place; only the holder may release."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, stream_events


async def test_release_returns_the_task_to_its_place(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("first", 50, {}, task_id="t-1")
    await store.create("second", 50, {}, task_id="t-2")
    await store.claim("w1", 1)

    released = await store.release("t-1", "w1", "shutting down")

    assert released["status"] == "pending"
    assert released["assignedTo"] == ""
    assert released["releaseReason"] == "shutting down"
    assert released["attempts"] == "1"
    assert await redis_client.zrange(keys.pending, 0, -1) == ["t-1", "t-2"]
    *_, event = await stream_events(redis_client, keys)
    assert (event["type"], event["task_id"], event["instance_id"]) == ("released", "t-1", "w1")
    await assert_consistent(redis_client, keys)


async def test_release_refusals(store: TaskStore, instances: InstanceStore) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await instances.register("w2", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    with pytest.raises(DomainError) as missing:
        await store.release("t-9", "w1", "")
    assert missing.value.code is ResultCode.NOT_FOUND
    with pytest.raises(DomainError) as pending:
        await store.release("t-1", "w1", "")
    assert pending.value.code is ResultCode.NOT_HELD
    await store.claim("w1", 1)
    with pytest.raises(DomainError) as other:
        await store.release("t-1", "w2", "")
    assert other.value.code is ResultCode.NOT_HELD
