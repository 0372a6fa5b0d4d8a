"""Retention of finished tasks: TASK_EXPIRE_FINISHED (its return code, skipped candidates) removes
COMPLETED / FAILED / CANCELLED tasks after their retention or beyond their count cap, with every
index entry, one EXPIRED event each, exactly once with two replicas; 0 keeps them forever."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import ALL_TASK_STATUSES, FINISHED_STATUSES, Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.lifecycle import LifecycleSettings, LifecycleStore, Retention
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, stream_events
from tests.lua.conftest import FakeClock

HOUR = 3600 * 1000


def retention_store(
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
    *rules: Retention,
) -> LifecycleStore:
    return LifecycleStore(executor, redis_client, keys, LifecycleSettings(retention=rules), clock)


async def finish(store: TaskStore, instances: InstanceStore, task_id: str, outcome: str = "result") -> None:
    await store.create(task_id, 50, {}, task_id=task_id)
    await instances.register("w1", ["worker"], 100, {})
    await store.assign(task_id, "w1")
    await store.complete(task_id, "w1", outcome, "1" if outcome == "result" else "broken")  # type: ignore[arg-type]


async def test_finished_tasks_vanish_after_their_retention_with_every_index_entry(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    retention = retention_store(
        executor, redis_client, keys, clock, Retention("completed", HOUR), Retention("failed", 2 * HOUR),
        Retention("cancelled", 0),
    )  # fmt: skip
    await finish(store, instances, "t-done")
    await finish(store, instances, "t-bad", "error")
    await store.create("c", 50, {}, task_id="t-cancelled")
    await store.cancel("t-cancelled", "")
    await store.create("p", 50, {}, task_id="t-pending")
    assert await redis_client.zscore(keys.finished("completed"), "t-done") == clock()
    clock.advance(HOUR - 1)
    assert await retention.expire_finished(clock()) == 0
    clock.advance(1)
    assert await retention.expire_finished(clock()) == 1
    with pytest.raises(DomainError) as gone:
        await store.get("t-done")
    assert gone.value.code is ResultCode.NOT_FOUND
    for status in ALL_TASK_STATUSES:
        assert "t-done" not in await redis_client.zrange(keys.status_index(status), 0, -1)
    for status in FINISHED_STATUSES:
        assert "t-done" not in await redis_client.zrange(keys.finished(status), 0, -1)
    listed = await store.list_page(None, None, 100, None)
    assert sorted(t["id"] for t in listed.tasks) == ["t-bad", "t-cancelled", "t-pending"]
    (event,) = [e for e in await stream_events(redis_client, keys) if e["type"] == "expired"]
    assert (event["task_id"], event["instance_id"]) == ("t-done", "")
    assert "task" not in event
    await assert_consistent(redis_client, keys)

    clock.advance(100 * HOUR)
    assert await retention.expire_finished(clock()) == 1  # the failed one; cancelled kept forever (0)
    assert sorted(await redis_client.zrange(keys.all_tasks, 0, -1)) == ["t-cancelled", "t-pending"]
    await assert_consistent(redis_client, keys)


async def test_count_caps_keep_the_newest(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    retention = retention_store(executor, redis_client, keys, clock, Retention("completed", 0, max_count=2))
    for i in range(5):
        await finish(store, instances, f"t-{i}")
        clock.advance(10)
    assert await retention.expire_finished(clock()) == 3
    assert await redis_client.zrange(keys.finished("completed"), 0, -1) == ["t-3", "t-4"]
    assert await redis_client.zrange(keys.all_tasks, 0, -1) == ["t-3", "t-4"]
    await assert_consistent(redis_client, keys)


async def test_candidates_within_the_limits_are_skipped(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await finish(store, instances, "t-1")
    result = await executor.run(
        "TASK_EXPIRE_FINISHED",
        keys={
            "all_tasks": keys.all_tasks,
            "idx": keys.status_index("completed"),
            "finished": keys.finished("completed"),
            "events": keys.events,
            "counts": keys.queue_counts,
        },
        args={"status": "completed", "now_ms": clock(), "maxlen": 100, "cutoff_ms": clock() - 1, "keep": 1},
        extra_keys=[
            keys.task("t-1"),
            keys.queue("default", "all"),
            keys.task("t-gone"),
            keys.queue("default", "all"),
        ],
        extra_args=["t-1", "default", "t-gone", "default"],
    )
    assert result.ok
    assert json.loads(result.payload) == {"expired": 0, "skipped": 2}
    assert await redis_client.exists(keys.task("t-1"))
    await assert_consistent(redis_client, keys)


async def test_two_replicas_expire_each_task_once_in_batches(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await instances.register("w1", ["worker"], 1000, {})
    for i in range(250):
        await store.create(f"t{i}", 50, {}, task_id=f"t-{i:03d}")
    for task in await store.claim("w1", 100) + await store.claim("w1", 100) + await store.claim("w1", 50):
        await store.complete(task["id"], "w1", "result", "1")
    clock.advance(HOUR)
    replicas = [
        retention_store(executor, redis_client, keys, clock, Retention("completed", HOUR)) for _ in range(2)
    ]
    removed = await asyncio.gather(*(r.expire_finished(clock()) for r in replicas))
    assert sum(removed) == 250
    expired = [e["task_id"] for e in await stream_events(redis_client, keys) if e["type"] == "expired"]
    assert sorted(expired) == [f"t-{i:03d}" for i in range(250)]
    assert await redis_client.zcard(keys.all_tasks) == 0
    await assert_consistent(redis_client, keys)
