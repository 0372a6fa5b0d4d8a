"""Delayed tasks: TASK_CREATE with a run_at (SCHEDULED, due index, SCHEDULED event), TASK_PROMOTE_DUE
(its one return code and the whole resulting state), promotion by claims (next_due), and 1,000 tasks
due at once claimed exactly once by concurrent claimers on several stores."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.instances import InstanceStore
from claudebench.store.lifecycle import LifecycleSettings, LifecycleStore, promote_due_batch
from claudebench.store.tasks import TaskStore, TaskStoreSettings
from tests.invariants import assert_consistent, pending_score, stream_events
from tests.lua.conftest import START_MS, TTL_MS, FakeClock


async def test_a_task_created_for_later_is_scheduled_not_pending(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    snapshot = await store.create("later", 50, {}, task_id="t-1", delay_ms=5_000)
    assert snapshot["status"] == "scheduled"
    assert snapshot["runAt"] == str(START_MS + 5_000)
    assert await redis_client.zrange(keys.due, 0, -1, withscores=True) == [("t-1", START_MS + 5_000.0)]
    assert await redis_client.zrange(keys.status_index("scheduled"), 0, -1) == ["t-1"]
    assert await redis_client.zcard(keys.pending) == 0
    assert await redis_client.zcard(keys.status_index("pending")) == 0
    assert await redis_client.zrange(keys.all_tasks, 0, -1) == ["t-1"]
    (event,) = await stream_events(redis_client, keys)
    assert (event["type"], event["task_id"]) == ("scheduled", "t-1")
    assert json.loads(event["task"]) == snapshot
    await assert_consistent(redis_client, keys)


async def test_a_run_at_not_in_the_future_is_pending_at_once(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    past = await store.create("past", 50, {}, task_id="t-past", run_at_ms=START_MS - 1)
    now = await store.create("now", 50, {}, task_id="t-now", run_at_ms=START_MS)
    assert (past["status"], now["status"]) == ("pending", "pending")
    assert "runAt" not in past
    assert await redis_client.zcard(keys.due) == 0
    assert [e["type"] for e in await stream_events(redis_client, keys)] == ["created", "created"]
    await assert_consistent(redis_client, keys)


async def test_promote_due_moves_only_due_scheduled_tasks_to_their_fifo_place(
    store: TaskStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await store.create("early", 50, {}, task_id="t-early", delay_ms=1_000)
    await store.create("plain", 50, {}, task_id="t-plain")
    await store.create("urgent", 90, {}, task_id="t-urgent", delay_ms=2_000)
    await store.create("late", 50, {}, task_id="t-late", delay_ms=60_000)
    clock.advance(2_000)

    outcome = await promote_due_batch(executor.run, redis_client, keys, clock(), 1000)
    assert (outcome.promoted, outcome.skipped, outcome.next_due) == (2, 0, START_MS + 60_000)
    # Their place: priority, then creation order (t-early was created before t-plain).
    assert await redis_client.zrange(keys.pending, 0, -1, withscores=True) == [
        ("t-urgent", pending_score(90, 3)),
        ("t-early", pending_score(50, 1)),
        ("t-plain", pending_score(50, 2)),
    ]
    early = await redis_client.hgetall(keys.task("t-early"))
    assert (early["status"], early["updatedAt"]) == ("pending", str(clock()))
    assert "runAt" not in early
    assert await redis_client.zrange(keys.due, 0, -1) == ["t-late"]
    assert await redis_client.zrange(keys.status_index("scheduled"), 0, -1) == ["t-late"]
    promoted_events = [e for e in await stream_events(redis_client, keys) if e["type"] == "updated"]
    assert [e["task_id"] for e in promoted_events] == ["t-early", "t-urgent"]
    assert all(json.loads(e["task"])["status"] == "pending" for e in promoted_events)
    await assert_consistent(redis_client, keys)

    # Candidates that are no longer scheduled, or not due, are skipped (counted), nothing written.
    result = await executor.run(
        "TASK_PROMOTE_DUE",
        keys={
            "due": keys.due,
            "counts": keys.queue_counts,
            "idx_scheduled": keys.status_index("scheduled"),
            "idx_pending": keys.status_index("pending"),
            "events": keys.events,
        },
        args={"now_ms": clock(), "maxlen": 1000},
        extra_keys=[
            key
            for t in ("t-early", "t-late", "t-gone")
            for key in (keys.task(t), *(keys.queue("default", p) for p in ("pending", "backlog", "fair")))
        ],
        extra_args=["t-early", "default", "t-late", "default", "t-gone", "default"],
    )
    assert result.ok
    assert json.loads(result.payload) == {"promoted": 0, "skipped": 3, "next_due": START_MS + 60_000}
    assert await redis_client.hget(keys.task("t-late"), "status") == "scheduled"
    await assert_consistent(redis_client, keys)


async def test_a_delayed_task_is_claimable_at_its_time_and_not_before(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("later", 50, {}, task_id="t-1", delay_ms=10_000)
    clock.advance(9_999)
    await instances.heartbeat("w1")
    assert await store.claim("w1", 1) == []
    assert await redis_client.hget(keys.task("t-1"), "status") == "scheduled"
    clock.advance(1)
    # No scheduler ran: the claim promotes what is due (its previous reply named next_due).
    (claimed,) = await store.claim("w1", 1)
    assert (claimed["id"], claimed["status"], claimed["assignedTo"]) == ("t-1", "in_progress", "w1")
    await assert_consistent(redis_client, keys)


async def test_the_scheduler_job_promotes_in_bounded_batches(
    store: TaskStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    lifecycle = LifecycleStore(executor, redis_client, keys, LifecycleSettings(), clock)
    for i in range(450):
        await store.create(f"t{i}", 50, {}, task_id=f"t-{i:03d}", delay_ms=100)
    assert (await lifecycle.promote_due(clock())).promoted == 0
    clock.advance(100)
    outcome = await lifecycle.promote_due(clock())
    assert (outcome.promoted, outcome.next_due) == (450, None)
    assert await redis_client.zrange(keys.pending, 0, -1) == [f"t-{i:03d}" for i in range(450)]
    await assert_consistent(redis_client, keys)


async def test_a_thousand_tasks_due_at_once_are_each_claimed_exactly_once(
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    instances: InstanceStore,
    clock: FakeClock,
) -> None:
    # Four replicas (stores with their own next_due and head hints), twenty workers claiming at once.
    replicas = [
        TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock) for _ in range(4)
    ]
    for i in range(1000):
        await replicas[i % 4].create(f"t{i}", 50, {}, task_id=f"t-{i:04d}", run_at_ms=START_MS + 5_000)
    workers = [f"w{n}" for n in range(20)]
    for worker in workers:
        await instances.register(worker, ["worker"], 1000, {})
    early = await asyncio.gather(*(r.claim(w, 10) for r, w in zip(replicas * 5, workers, strict=True)))
    assert not any(early)
    clock.advance(5_000)
    for worker in workers:
        await instances.heartbeat(worker)

    async def drain(replica: TaskStore, worker: str) -> list[str]:
        taken: list[str] = []
        while batch := await replica.claim(worker, 7):
            taken += [t["id"] for t in batch]
        return taken

    results = await asyncio.gather(*(drain(r, w) for r, w in zip(replicas * 5, workers, strict=True)))
    counts = Counter(task_id for taken in results for task_id in taken)
    assert counts == Counter({f"t-{i:04d}": 1 for i in range(1000)})
    # Each claimer took its tasks in queue order (promoted in order: FIFO by creation).
    for taken in results:
        assert taken == sorted(taken)
    claimed_events = Counter(
        e["task_id"] for e in await stream_events(redis_client, keys) if e["type"] == "claimed"
    )
    assert set(claimed_events.values()) == {1}
    await assert_consistent(redis_client, keys)
