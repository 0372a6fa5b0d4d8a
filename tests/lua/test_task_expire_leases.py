"""Leases: claims and assignments set lease_deadline; TASK_EXPIRE_LEASES takes back tasks whose
holder missed it (every outcome: requeued, scheduled for a retry, failed; stale entries dropped,
live ones skipped), exactly once with two replicas; the old holder's late completion is refused."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.lifecycle import Expiry, LifecycleSettings, LifecycleStore, RetryPolicy
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, stream_events, task_hash
from tests.lua.conftest import START_MS, FakeClock

TIMEOUT = 10_000


@pytest.fixture
def lifecycle(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> LifecycleStore:
    store = LifecycleStore(executor, redis_client, keys, LifecycleSettings(max_failovers=1), clock)
    store._random = lambda: 0.5  # no jitter: backoff exactly as the policy says
    return store


async def held_by(store: TaskStore, instances: InstanceStore, worker: str, task_id: str) -> dict[str, str]:
    await instances.register(worker, ["worker"], 5, {})
    (task,) = await store.claim(worker, 1)
    assert task["id"] == task_id
    return task


async def test_claim_and_assign_set_the_lease(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await store.create("timed", 50, {}, task_id="t-1", timeout_ms=TIMEOUT)
    await store.create("untimed", 40, {}, task_id="t-2")
    await store.create("assigned", 30, {}, task_id="t-3", timeout_ms=2 * TIMEOUT)
    task = await held_by(store, instances, "w1", "t-1")
    assert (task["timeoutMs"], task["leaseDeadline"]) == (str(TIMEOUT), str(START_MS + TIMEOUT))
    untimed = (await store.claim("w1", 1))[0]
    assert "leaseDeadline" not in untimed
    await store.assign("t-3", "w1")
    assert await redis_client.zrange(keys.leases, 0, -1, withscores=True) == [
        ("t-1", START_MS + TIMEOUT),
        ("t-3", START_MS + 2 * TIMEOUT),
    ]
    await assert_consistent(redis_client, keys)


async def test_a_missed_deadline_requeues_the_task_and_refuses_the_old_holder(
    store: TaskStore,
    instances: InstanceStore,
    lifecycle: LifecycleStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await store.create("hangs", 50, {}, task_id="t-1", timeout_ms=TIMEOUT)
    await held_by(store, instances, "w1", "t-1")
    clock.advance(TIMEOUT)
    assert await lifecycle.expire_leases(clock()) == Expiry(0, 0, 0, 0, 0, 0)  # at the deadline: still held
    clock.advance(1)
    # Past the deadline but before the expiry ran: the holder's completion is already refused.
    with pytest.raises(DomainError) as late:
        await store.complete("t-1", "w1", "result", "1")
    assert late.value.code is ResultCode.NOT_HELD
    assert "its lease expired at" in late.value.message
    assert await lifecycle.expire_leases(clock()) == Expiry(1, 1, 0, 0, 0, 0)

    task = await task_hash(redis_client, keys.task("t-1"))
    assert (task["status"], task["assignedTo"], task["failovers"], task["deny"]) == (
        "pending",
        "",
        "1",
        '["w1"]',
    )
    assert "leaseDeadline" not in task
    assert "did not finish within the timeout of 10000 ms" in task["releaseReason"]
    assert await redis_client.zcard(keys.held("w1")) == 0
    assert await redis_client.zcard(keys.leases) == 0
    (event,) = [e for e in await stream_events(redis_client, keys) if e["type"] == "timed_out"]
    assert (event["task_id"], event["instance_id"]) == ("t-1", "w1")
    assert json.loads(event["task"])["status"] == "pending"
    await assert_consistent(redis_client, keys)

    # Another worker takes it and finishes; the old holder's completion names the expired lease.
    await instances.heartbeat("w1")
    await held_by(store, instances, "w2", "t-1")
    with pytest.raises(DomainError) as refused:
        await store.complete("t-1", "w1", "result", "1")
    assert "its lease expired (the timeout ran out) and it was taken back" in refused.value.message
    done = await store.complete("t-1", "w2", "result", "2")
    assert done["status"] == "completed"
    await assert_consistent(redis_client, keys)


async def test_past_max_failovers_a_timed_out_task_fails(
    store: TaskStore,
    instances: InstanceStore,
    lifecycle: LifecycleStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await store.create("hangs", 50, {}, task_id="t-1", timeout_ms=TIMEOUT)
    for worker in ("w1", "w2"):
        await held_by(store, instances, worker, "t-1")
        clock.advance(TIMEOUT + 1)
        await lifecycle.expire_leases(clock())
    task = await task_hash(redis_client, keys.task("t-1"))
    assert task["status"] == "failed"
    assert task["error"].endswith("failed over 2 times (more than 1)")
    types = [e["type"] for e in await stream_events(redis_client, keys)]
    assert types[-2:] == ["timed_out", "failed"]
    await assert_consistent(redis_client, keys)


async def test_with_a_retry_policy_a_timeout_schedules_a_retry_then_fails(
    store: TaskStore,
    instances: InstanceStore,
    lifecycle: LifecycleStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff_ms=500)
    await store.create("hangs", 50, {}, task_id="t-1", timeout_ms=TIMEOUT, retry=policy)
    await held_by(store, instances, "w1", "t-1")
    clock.advance(TIMEOUT + 1)
    assert (await lifecycle.expire_leases(clock())).scheduled == 1
    task = await task_hash(redis_client, keys.task("t-1"))
    assert (task["status"], task["runAt"], task["assignedTo"]) == ("scheduled", str(clock() + 500), "")
    assert await redis_client.zscore(keys.due, "t-1") == clock() + 500
    assert [e["type"] for e in await stream_events(redis_client, keys)][-2:] == ["timed_out", "scheduled"]
    await assert_consistent(redis_client, keys)

    clock.advance(500)
    await instances.heartbeat("w1")
    (again,) = await store.claim("w1", 1)  # no deny list on the retry path: any worker may take it
    assert again["attempts"] == "2"
    clock.advance(TIMEOUT + 1)
    assert (await lifecycle.expire_leases(clock())).failed == 1
    task = await task_hash(redis_client, keys.task("t-1"))
    assert task["status"] == "failed"
    assert task["error"].endswith("; no attempt left")
    await assert_consistent(redis_client, keys)


async def test_stale_entries_are_dropped_and_live_ones_skipped(
    store: TaskStore,
    instances: InstanceStore,
    lifecycle: LifecycleStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await store.create("done", 50, {}, task_id="t-done", timeout_ms=TIMEOUT)
    await store.create("held", 40, {}, task_id="t-held", timeout_ms=TIMEOUT)
    await held_by(store, instances, "w1", "t-done")
    await store.complete("t-done", "w1", "result", "1")
    await held_by(store, instances, "w2", "t-held")
    assert await redis_client.zcard(keys.leases) == 2  # the finished task's entry stays ...
    clock.advance(TIMEOUT + 1)
    # ... until its deadline. A candidate whose holder differs from the one read is skipped.
    result = await executor.run(
        "TASK_EXPIRE_LEASES",
        keys={
            "leases": keys.leases,
            "counts": keys.queue_counts,
            "due": keys.due,
            "idx_in_progress": keys.status_index("in_progress"),
            "idx_pending": keys.status_index("pending"),
            "idx_scheduled": keys.status_index("scheduled"),
            "idx_failed": keys.status_index("failed"),
            "events": keys.events,
            "finished_failed": keys.finished("failed"),
        },
        args={"now_ms": clock(), "maxlen": 1000, "max_failovers": 3},
        extra_keys=[
            key
            for t, holder in (("t-done", "w1"), ("t-held", "w9"))
            for key in (
                keys.task(t),
                keys.held(holder),
                *(keys.queue("default", p) for p in ("pending", "backlog", "fair")),
            )
        ],
        extra_args=["t-done", "w1", 0, "default", "t-held", "w9", 0, "default"],
    )
    assert result.ok
    assert json.loads(result.payload) == {
        "expired": 0,
        "requeued": 0,
        "scheduled": 0,
        "failed": 0,
        "dropped": 1,
        "skipped": 1,
    }
    assert await redis_client.zrange(keys.leases, 0, -1) == ["t-held"]
    assert await redis_client.hget(keys.task("t-held"), "status") == "in_progress"
    await assert_consistent(redis_client, keys)


async def test_two_replicas_expire_each_lease_exactly_once(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await instances.register("w1", ["worker"], 100, {})
    for i in range(60):
        await store.create(f"t{i}", 50, {}, task_id=f"t-{i:02d}", timeout_ms=TIMEOUT)
    assert len(await store.claim("w1", 60)) == 60
    clock.advance(TIMEOUT + 1)
    replicas = [LifecycleStore(executor, redis_client, keys, LifecycleSettings(), clock) for _ in range(3)]
    outcomes = await asyncio.gather(*(r.expire_leases_batch(clock(), 25) for r in replicas * 3))
    assert (
        sum(o.expired for o in outcomes) + sum([(await r.expire_leases(clock())).expired for r in replicas])
        == 60
    )
    timed_out = [e["task_id"] for e in await stream_events(redis_client, keys) if e["type"] == "timed_out"]
    assert sorted(timed_out) == [f"t-{i:02d}" for i in range(60)]
    await assert_consistent(redis_client, keys)
