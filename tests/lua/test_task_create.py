"""TASK_CREATE: OK and ALREADY_EXISTS, with the whole resulting Redis state."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, pending_score, stream_events
from tests.lua.conftest import START_MS


async def test_create_writes_task_indexes_and_one_event(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    snapshot = await store.create("build it", 70, {"team": '"core"', "n": "3"}, task_id="t-1")

    stored = await redis_client.hgetall(keys.task("t-1"))
    assert stored == snapshot
    assert stored == {
        "id": "t-1",
        "seq": "1",
        "text": "build it",
        "priority": "70",
        "status": "pending",
        "assignedTo": "",
        "attempts": "0",
        "createdAt": str(START_MS),
        "updatedAt": str(START_MS),
        "m:team": '"core"',
        "m:n": "3",
    }
    assert await redis_client.zrange(keys.pending, 0, -1, withscores=True) == [("t-1", pending_score(70, 1))]
    assert await redis_client.zrange(keys.all_tasks, 0, -1, withscores=True) == [("t-1", 1.0)]
    assert await redis_client.zrange(keys.status_index("pending"), 0, -1) == ["t-1"]
    assert await redis_client.get(keys.task_seq) == "1"
    (event,) = await stream_events(redis_client, keys)
    assert event["type"] == "created"
    assert event["task_id"] == "t-1"
    assert event["instance_id"] == ""
    assert event["time"] == str(START_MS)
    assert json.loads(event["task"]) == stored
    await assert_consistent(redis_client, keys)


async def test_priority_zero_is_kept_and_orders_last(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await store.create("low", 0, {}, task_id="t-low")
    await store.create("high", 100, {}, task_id="t-high")
    await store.create("mid-a", 50, {}, task_id="t-mid-a")
    await store.create("mid-b", 50, {}, task_id="t-mid-b")

    assert await redis_client.hget(keys.task("t-low"), "priority") == "0"
    assert await redis_client.zrange(keys.pending, 0, -1) == [
        "t-high",
        "t-mid-a",
        "t-mid-b",
        "t-low",
    ]


async def test_existing_id_is_refused_and_nothing_changes(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await store.create("first", 50, {}, task_id="t-1")
    before = await redis_client.hgetall(keys.task("t-1"))

    with pytest.raises(DomainError) as refused:
        await store.create("second", 90, {"x": "1"}, task_id="t-1")

    assert refused.value.code is ResultCode.ALREADY_EXISTS
    assert refused.value.message == "Task t-1 already exists"
    assert await redis_client.hgetall(keys.task("t-1")) == before
    assert await redis_client.get(keys.task_seq) == "1"
    assert len(await stream_events(redis_client, keys)) == 1
    await assert_consistent(redis_client, keys)


async def test_generated_ids_are_unique(store: TaskStore) -> None:
    ids = {(await store.create(f"task {i}", 50, {}))["id"] for i in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("t-") and len(i) == 28 for i in ids)
