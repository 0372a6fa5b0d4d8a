"""TASK_CREATE_IDEMPOTENT: every return code; a second create with the key returns the first task
(no write, no event); after the window, or once the first task is gone, a new task; 20 concurrent
creates on several stores create one task."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.tasks import TaskStore, TaskStoreSettings
from tests.invariants import assert_consistent, stream_events
from tests.lua.conftest import TTL_MS, FakeClock


async def test_the_second_create_returns_the_first_task(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    first = await store.create("once", 50, {}, idempotency_key="order-17")
    assert first["idempotencyKey"] == "order-17"
    record = keys.idempotency("order-17")
    assert record.startswith(f"{keys.prefix}:idempotency:")
    assert "order-17" not in record  # hashed: no client string addresses a key
    assert await redis_client.get(record) == first["id"]
    assert 0 < await redis_client.pttl(record) <= 24 * 3600 * 1000
    second = await store.create("twice", 60, {"x": "1"}, idempotency_key="order-17")
    assert second == first
    assert len(await stream_events(redis_client, keys)) == 1
    assert await redis_client.zcard(keys.all_tasks) == 1
    other = await store.create("other", 50, {}, idempotency_key="order-18")
    assert other["id"] != first["id"]
    with pytest.raises(DomainError) as taken:
        await store.create("same id", 50, {}, task_id=other["id"], idempotency_key="order-19")
    assert taken.value.code is ResultCode.ALREADY_EXISTS
    await assert_consistent(redis_client, keys)


async def test_the_key_is_free_after_its_window_or_its_task(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    settings = dataclasses.replace(TaskStoreSettings(100_000, TTL_MS), idempotency_window_ms=150)
    store = TaskStore(executor, redis_client, keys, settings, clock)
    first = await store.create("a", 50, {}, idempotency_key="k")
    await asyncio.sleep(0.2)  # the record's Redis TTL (no fake clock can move Redis's)
    second = await store.create("b", 50, {}, idempotency_key="k")
    assert second["id"] != first["id"]
    await store.delete(second["id"])
    third = await store.create("c", 50, {}, idempotency_key="k")
    assert third["id"] not in (first["id"], second["id"])
    await assert_consistent(redis_client, keys)


async def test_a_changed_record_is_stale(
    store: TaskStore, executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    first = await store.create("a", 50, {}, idempotency_key="k")
    result = await executor.run(
        "TASK_CREATE_IDEMPOTENT",
        keys={
            "task": keys.task("t-new"),
            "pending": keys.pending,
            "all_tasks": keys.all_tasks,
            "idx_pending": keys.status_index("pending"),
            "events": keys.events,
            "seq": keys.task_seq,
            "due": keys.due,
            "idx_scheduled": keys.status_index("scheduled"),
            "idempotency": keys.idempotency("k"),
            "existing": keys.task("t-new"),
            "backlog": keys.queue("default", "backlog"),
            "fair": keys.queue("default", "fair"),
            "queue_all": keys.queue("default", "all"),
            "queues": keys.queues,
            "counts": keys.queue_counts,
            "config": keys.queue("default", "config"),
        },
        args={
            "task_id": "t-new",
            "text": "b",
            "priority": 50,
            "now_ms": 1,
            "maxlen": 100,
            "run_at": 0,
            "timeout_ms": 0,
            "max_attempts": 1,
            "retry": "",
            "idempotency_key": "k",
            "window_ms": 1000,
            "expected_existing": "",  # read before the first create
            "queue": "default",
            "default_timeout_ms": 0,
            "default_max_attempts": 1,
            "default_retry": "",
        },
    )
    assert result.code is ResultCode.STALE
    assert await redis_client.get(keys.idempotency("k")) == first["id"]
    assert not await redis_client.exists(keys.task("t-new"))


async def test_twenty_concurrent_creates_with_one_key_make_one_task(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    replicas = [
        TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock) for _ in range(4)
    ]
    created = await asyncio.gather(
        *(replicas[i % 4].create(f"try {i}", 50, {}, idempotency_key="burst") for i in range(20))
    )
    assert len({task["id"] for task in created}) == 1
    assert await redis_client.zcard(keys.all_tasks) == 1
    assert [e["type"] for e in await stream_events(redis_client, keys)] == ["created"]
    await assert_consistent(redis_client, keys)
