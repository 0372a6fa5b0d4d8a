"""TASK_UPDATE: fields, metadata merge, status transitions with their index moves, refusals."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, pending_score, stream_events


async def test_text_priority_and_metadata_merge(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await store.create("old", 10, {"keep": '"me"', "change": "1"}, task_id="t-1")

    snapshot = await store.update("t-1", "new", 80, None, {"change": "2", "add": "[1,2]"})

    assert snapshot["text"] == "new"
    assert snapshot["priority"] == "80"
    assert {k: v for k, v in snapshot.items() if k.startswith("m:")} == {
        "m:keep": '"me"',
        "m:change": "2",
        "m:add": "[1,2]",
    }
    assert await redis_client.zscore(keys.pending, "t-1") == pending_score(80, 1)
    *_, event = await stream_events(redis_client, keys)
    assert event["type"] == "updated"
    assert json.loads(event["task"]) == snapshot
    await assert_consistent(redis_client, keys)


async def test_release_to_pending_and_retry_of_failed(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.claim("w1", 1)

    back = await store.update("t-1", None, None, "pending", {})
    assert (back["status"], back["assignedTo"]) == ("pending", "")
    assert "assignedAt" not in back
    assert await redis_client.zcard(keys.held("w1")) == 0
    await assert_consistent(redis_client, keys)

    await store.claim("w1", 1)
    await store.complete("t-1", "w1", "error", "boom")
    retried = await store.update("t-1", None, None, "pending", {})
    assert retried["status"] == "pending"
    assert "error" not in retried
    assert "completedAt" not in retried
    await assert_consistent(redis_client, keys)


async def test_only_complete_task_finishes_a_task(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.create("b", 50, {}, task_id="t-2")
    await store.claim("w1", 1)
    events = len(await stream_events(redis_client, keys))

    for task_id, status in [("t-1", "completed"), ("t-1", "failed"), ("t-2", "completed"), ("t-2", "failed")]:
        with pytest.raises(DomainError) as refused:
            await store.update(task_id, None, None, status, {})
        assert refused.value.code is ResultCode.INVALID_TRANSITION
        assert "only CompleteTask" in refused.value.message

    assert (await store.get("t-1"))["status"] == "in_progress"
    assert (await store.get("t-2"))["status"] == "pending"
    assert len(await stream_events(redis_client, keys)) == events
    await assert_consistent(redis_client, keys)


async def test_refused_transitions_write_nothing(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.create("b", 50, {}, task_id="t-2")
    await store.claim("w1", 1)
    await store.complete("t-1", "w1", "result", '"ok"')
    events = len(await stream_events(redis_client, keys))

    with pytest.raises(DomainError) as completed:
        await store.update("t-1", "changed", None, "pending", {})
    assert completed.value.code is ResultCode.INVALID_TRANSITION
    assert "cannot change status" in completed.value.message
    with pytest.raises(DomainError) as to_progress:
        await store.update("t-2", None, None, "in_progress", {})
    assert to_progress.value.code is ResultCode.INVALID_TRANSITION
    with pytest.raises(DomainError) as missing:
        await store.update("t-9", "x", None, None, {})
    assert missing.value.code is ResultCode.NOT_FOUND

    assert await redis_client.hget(keys.task("t-1"), "text") == "a"
    assert len(await stream_events(redis_client, keys)) == events
    # Same status on a completed task is allowed (text changes).
    assert (await store.update("t-1", "note", None, "completed", {}))["text"] == "note"


async def test_stale_holder_is_reported_without_writing(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.claim("w1", 1)

    result = await executor.run(
        "TASK_UPDATE",
        keys={
            "task": keys.task("t-1"),
            "pending": keys.pending,
            "idx_pending": keys.status_index("pending"),
            "idx_in_progress": keys.status_index("in_progress"),
            "idx_completed": keys.status_index("completed"),
            "idx_failed": keys.status_index("failed"),
            "idx_scheduled": keys.status_index("scheduled"),
            "idx_cancelled": keys.status_index("cancelled"),
            "due": keys.due,
            "finished_failed": keys.finished("failed"),
            "finished_cancelled": keys.finished("cancelled"),
            "held": keys.held(""),
            "events": keys.events,
            "backlog": keys.queue("default", "backlog"),
            "fair": keys.queue("default", "fair"),
            "seq": keys.task_seq,
            "counts": keys.queue_counts,
        },
        args={
            "task_id": "t-1",
            "now_ms": 1,
            "maxlen": 1000,
            "expected_assignee": "",
            "text": "",
            "priority": "",
            "status": "pending",
            "queue": "default",
        },
    )

    assert result.code is ResultCode.STALE
    assert await redis_client.hget(keys.task("t-1"), "status") == "in_progress"
    await assert_consistent(redis_client, keys)
