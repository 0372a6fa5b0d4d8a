"""TASK_DELETE: every index entry goes with the task; one DELETED event without a snapshot."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from claudebench.keys import ALL_TASK_STATUSES, Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, stream_events


async def test_delete_pending_held_and_finished_tasks(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    for i in range(3):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i}")
    await store.claim("w1", 2)  # t-0 and t-1
    await store.complete("t-0", "w1", "result", "1")

    with pytest.raises(DomainError) as held:
        await store.delete("t-1")
    assert held.value.code is ResultCode.INVALID_TRANSITION
    assert "in progress with w1" in held.value.message
    assert await redis_client.exists(keys.task("t-1")) == 1

    for task_id in ("t-0", "t-2"):
        await store.delete(task_id)
    await store.delete("t-1", force=True)

    assert await redis_client.exists(keys.task("t-0"), keys.task("t-1"), keys.task("t-2")) == 0
    for index in [keys.pending, keys.all_tasks, keys.held("w1")] + [
        keys.status_index(s) for s in ALL_TASK_STATUSES
    ]:
        assert await redis_client.zcard(index) == 0, index
    *_, unheld, forced = await stream_events(redis_client, keys)
    assert unheld == {"type": "deleted", "task_id": "t-2", "instance_id": "", "time": unheld["time"]}
    # The holder of a task deleted by force is named: it learns that it lost it.
    assert forced == {"type": "deleted", "task_id": "t-1", "instance_id": "w1", "time": forced["time"]}
    await assert_consistent(redis_client, keys)


async def test_delete_unknown_and_stale(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    with pytest.raises(DomainError) as missing:
        await store.delete("t-9")
    assert missing.value.code is ResultCode.NOT_FOUND

    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.claim("w1", 1)
    result = await executor.run(
        "TASK_DELETE",
        keys={
            "task": keys.task("t-1"),
            "pending": keys.pending,
            "all_tasks": keys.all_tasks,
            **{f"idx_{s}": keys.status_index(s) for s in ALL_TASK_STATUSES},
            "due": keys.due,
            **{f"finished_{s}": keys.finished(s) for s in ("completed", "failed", "cancelled")},
            "held": keys.held("someone-else"),
            "events": keys.events,
            "backlog": keys.queue("default", "backlog"),
            "fair": keys.queue("default", "fair"),
            "seq": keys.task_seq,
            "counts": keys.queue_counts,
            "queue_all": keys.queue("default", "all"),
        },
        args={
            "task_id": "t-1",
            "expected_assignee": "someone-else",
            "now_ms": 1,
            "maxlen": 100,
            "force": 1,
            "queue": "default",
        },
    )
    assert result.code is ResultCode.STALE
    assert await redis_client.exists(keys.task("t-1")) == 1
    await assert_consistent(redis_client, keys)
