"""TASK_ASSIGN: every result code and the resulting state."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, stream_events
from tests.lua.conftest import TTL_MS, FakeClock


@pytest.fixture
async def ready(store: TaskStore, instances: InstanceStore) -> None:
    await instances.register("w1", ["worker"], 1, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.create("b", 50, {}, task_id="t-2")


async def refused(store: TaskStore, task_id: str, instance_id: str) -> DomainError:
    with pytest.raises(DomainError) as info:
        await store.assign(task_id, instance_id)
    return info.value


@pytest.mark.usefixtures("ready")
async def test_assign_hands_the_task_over(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    snapshot = await store.assign("t-2", "w1")

    assert snapshot["status"] == "in_progress"
    assert snapshot["assignedTo"] == "w1"
    assert snapshot["assignedAt"] == str(clock())
    assert snapshot["attempts"] == "1"
    assert await redis_client.zrange(keys.held("w1"), 0, -1) == ["t-2"]
    assert await redis_client.zrange(keys.pending, 0, -1) == ["t-1"]
    *_, event = await stream_events(redis_client, keys)
    assert (event["type"], event["task_id"], event["instance_id"]) == ("assigned", "t-2", "w1")
    assert json.loads(event["task"]) == snapshot
    await assert_consistent(redis_client, keys)


@pytest.mark.usefixtures("ready")
async def test_repeating_an_assignment_is_a_no_op(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    first = await store.assign("t-1", "w1")
    events = len(await stream_events(redis_client, keys))

    assert await store.assign("t-1", "w1") == first
    assert len(await stream_events(redis_client, keys)) == events


@pytest.mark.usefixtures("ready")
async def test_refusals_write_nothing(
    store: TaskStore,
    instances: InstanceStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    assert (await refused(store, "t-9", "w1")).code is ResultCode.NOT_FOUND
    assert (await refused(store, "t-1", "nobody")).code is ResultCode.INSTANCE_NOT_REGISTERED

    await redis_client.hset(keys.task("t-1"), "deny", json.dumps(["w1"]))
    denied = await refused(store, "t-1", "w1")
    assert denied.code is ResultCode.DENIED
    assert "deny list" in denied.message

    await store.assign("t-2", "w1")
    await instances.register("w2", ["worker"], 5, {})
    not_pending = await refused(store, "t-2", "w2")
    assert not_pending.code is ResultCode.NOT_PENDING
    assert not_pending.message == "Task not pending: t-2 is in_progress, assigned to w1"

    await redis_client.hdel(keys.task("t-1"), "deny")
    full = await refused(store, "t-1", "w1")
    assert full.code is ResultCode.AT_CAPACITY
    assert full.message.startswith("Instance at capacity")

    clock.advance(TTL_MS + 1)
    assert (await refused(store, "t-1", "w2")).code is ResultCode.INSTANCE_OFFLINE

    assert await redis_client.hget(keys.task("t-1"), "status") == "pending"
    assert len(await stream_events(redis_client, keys)) == 3  # two creates, one assign
    await assert_consistent(redis_client, keys)
