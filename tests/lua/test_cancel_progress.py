"""TASK_CANCEL (every return code; PENDING, SCHEDULED, IN_PROGRESS) and TASK_PROGRESS (every return
code; merge, lease extension, coalesced events, the cancelled flag), with the resulting state."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.task_control import PROGRESS_EVENT_INTERVAL_MS
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, stream_events, task_hash
from tests.lua.conftest import START_MS, FakeClock


async def test_cancel_pending_and_scheduled_tasks(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await store.create("now", 50, {}, task_id="t-1")
    await store.create("later", 50, {}, task_id="t-2", delay_ms=60_000)
    one = await store.cancel("t-1", "changed my mind")
    two = await store.cancel("t-2", "")
    assert (one["status"], one["cancelReason"], one["completedAt"]) == (
        "cancelled",
        "changed my mind",
        str(START_MS),
    )
    assert two["status"] == "cancelled"
    assert "runAt" not in two
    assert await redis_client.zcard(keys.pending) == 0
    assert await redis_client.zcard(keys.due) == 0
    assert await redis_client.zrange(keys.status_index("cancelled"), 0, -1) == ["t-1", "t-2"]
    events = [e for e in await stream_events(redis_client, keys) if e["type"] == "cancelled"]
    assert [(e["task_id"], e["instance_id"]) for e in events] == [("t-1", ""), ("t-2", "")]
    await assert_consistent(redis_client, keys)

    with pytest.raises(DomainError) as again:
        await store.cancel("t-1", "")
    assert again.value.code is ResultCode.INVALID_TRANSITION
    assert (
        "is cancelled; only a PENDING, SCHEDULED or IN_PROGRESS task can be cancelled" in again.value.message
    )
    with pytest.raises(DomainError) as missing:
        await store.cancel("t-9", "")
    assert missing.value.code is ResultCode.NOT_FOUND


async def test_cancel_in_progress_frees_the_holder_and_tells_it(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("long", 50, {}, task_id="t-1", timeout_ms=60_000)
    await store.claim("w1", 1)
    cancelled = await store.cancel("t-1", "stop")
    assert (cancelled["status"], cancelled["assignedTo"], cancelled["cancelledHolder"]) == (
        "cancelled",
        "",
        "w1",
    )
    assert "leaseDeadline" not in cancelled
    assert await redis_client.zcard(keys.held("w1")) == 0
    (event,) = [e for e in await stream_events(redis_client, keys) if e["type"] == "cancelled"]
    assert event["instance_id"] == "w1"
    await assert_consistent(redis_client, keys)

    reply = await store.progress("t-1", "w1", {"pct": "50"})
    assert reply.cancelled is True
    assert "p:pct" not in await task_hash(redis_client, keys.task("t-1"))  # nothing written
    with pytest.raises(DomainError) as late:
        await store.complete("t-1", "w1", "result", "1")
    assert late.value.code is ResultCode.NOT_HELD
    assert "was cancelled while w1 held it" in late.value.message
    with pytest.raises(DomainError) as completed:
        await store.cancel("t-1", "")
    assert completed.value.code is ResultCode.INVALID_TRANSITION


async def test_cancel_with_a_stale_holder_writes_nothing(
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
        "TASK_CANCEL",
        keys={
            "task": keys.task("t-1"),
            "pending": keys.pending,
            "due": keys.due,
            "idx_pending": keys.status_index("pending"),
            "idx_scheduled": keys.status_index("scheduled"),
            "idx_in_progress": keys.status_index("in_progress"),
            "idx_cancelled": keys.status_index("cancelled"),
            "held": keys.held("w9"),
            "events": keys.events,
            "finished_cancelled": keys.finished("cancelled"),
            "backlog": keys.queue("default", "backlog"),
            "fair": keys.queue("default", "fair"),
            "seq": keys.task_seq,
            "counts": keys.queue_counts,
        },
        args={
            "task_id": "t-1",
            "expected_assignee": "w9",
            "now_ms": 1,
            "maxlen": 100,
            "reason": "",
            "queue": "default",
        },
    )
    assert result.code is ResultCode.STALE
    assert await redis_client.hget(keys.task("t-1"), "status") == "in_progress"
    await assert_consistent(redis_client, keys)


async def test_progress_merges_extends_and_coalesces_events(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("long", 50, {}, task_id="t-1", timeout_ms=10_000)
    await store.claim("w1", 1)
    first = await store.progress("t-1", "w1", {"step": '"download"', "pct": "10"})
    assert first.cancelled is False
    assert (first.task["p:step"], first.task["p:pct"]) == ('"download"', "10")
    assert first.task["leaseDeadline"] == str(START_MS + 10_000)  # the task's timeout again
    for pct in range(11, 20):  # a burst: the task holds the newest, one event for all of them
        clock.advance(10)
        await store.progress("t-1", "w1", {"pct": str(pct)}, extend_ms=60_000)
    task = await task_hash(redis_client, keys.task("t-1"))
    assert (task["p:step"], task["p:pct"], task["leaseDeadline"]) == (
        '"download"',
        "19",
        str(clock() + 60_000),
    )
    assert await redis_client.zscore(keys.leases, "t-1") == clock() + 60_000
    progress_events = [e for e in await stream_events(redis_client, keys) if e["type"] == "progress"]
    assert len(progress_events) == 1
    clock.advance(PROGRESS_EVENT_INTERVAL_MS)
    await store.progress("t-1", "w1", {"pct": "20"})
    progress_events = [e for e in await stream_events(redis_client, keys) if e["type"] == "progress"]
    assert [json.loads(e["task"])["p:pct"] for e in progress_events] == ["10", "20"]
    assert progress_events[-1]["instance_id"] == "w1"
    # A report without progress only extends the lease (no event).
    clock.advance(PROGRESS_EVENT_INTERVAL_MS)
    await store.progress("t-1", "w1", {})
    assert len([e for e in await stream_events(redis_client, keys) if e["type"] == "progress"]) == 2
    await assert_consistent(redis_client, keys)


async def test_progress_refusals(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    with pytest.raises(DomainError) as missing:
        await store.progress("t-9", "w1", {})
    assert missing.value.code is ResultCode.NOT_FOUND
    await store.create("a", 50, {}, task_id="t-1", timeout_ms=1_000)
    with pytest.raises(DomainError) as pending:
        await store.progress("t-1", "w1", {})
    assert pending.value.code is ResultCode.NOT_HELD
    assert "not held by w1 (status pending, held by nobody)" in pending.value.message
    await instances.register("w1", ["worker"], 5, {})
    await store.claim("w1", 1)
    clock.advance(1_001)
    with pytest.raises(DomainError) as expired:
        await store.progress("t-1", "w1", {"x": "1"})
    assert "its lease expired at" in expired.value.message
    assert "p:x" not in await task_hash(redis_client, keys.task("t-1"))
