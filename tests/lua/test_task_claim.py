"""TASK_CLAIM: every result code, ordering, capacity, deny lists, stale candidates, state."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode, ScriptResult
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.conftest import ON_CLUSTER
from tests.invariants import assert_consistent, stream_events
from tests.lua.conftest import TTL_MS, FakeClock


def claim_keys(keys: Keyspace, worker: str) -> dict[str, str]:
    return {
        "instance": keys.instance(worker),
        "held": keys.held(worker),
        "idx_pending": keys.status_index("pending"),
        "idx_in_progress": keys.status_index("in_progress"),
        "events": keys.events,
        "queue_metrics": keys.queue_metrics,
        "seq": keys.task_seq,
        "counts": keys.queue_counts,
        "due": keys.due,
        "leases": keys.leases,
    }


async def claim_from(
    executor: ScriptExecutor,
    keys: Keyspace,
    now_ms: int,
    worker: str,
    max_tasks: int,
    candidates: list[str],
    queue: str = "default",
    explicit: bool = False,
) -> ScriptResult:
    """TASK_CLAIM called directly with the candidates (of one queue) a caller read earlier."""
    return await executor.run(
        "TASK_CLAIM",
        keys=claim_keys(keys, worker),
        args={
            "worker_id": worker,
            "now_ms": now_ms,
            "ttl_ms": TTL_MS,
            "max_tasks": max_tasks,
            "maxlen": 1000,
            "event_type": "claimed",
            "explicit": int(explicit),
            "head_size": 64,
            "nqueues": 1,
        },
        extra_keys=[keys.queue(queue, p) for p in ("pending", "backlog", "fair", "config", "rate")]
        + [keys.task(c) for c in candidates],
        extra_args=[queue, len(candidates), *candidates],
    )


async def test_unregistered_worker_is_refused(store: TaskStore, redis_client: aioredis.Redis) -> None:
    await store.create("a", 50, {}, task_id="t-1")
    with pytest.raises(DomainError) as refused:
        await store.claim("ghost", 1)
    assert refused.value.code is ResultCode.INSTANCE_NOT_REGISTERED
    assert "ghost is not registered" in refused.value.message


async def test_silent_worker_is_offline(store: TaskStore, instances: InstanceStore, clock: FakeClock) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    clock.advance(TTL_MS + 1)
    with pytest.raises(DomainError) as refused:
        await store.claim("w1", 1)
    assert refused.value.code is ResultCode.INSTANCE_OFFLINE


async def test_claims_highest_priority_first_then_fifo(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 10, {})
    for task_id, priority in [("t-a", 10), ("t-b", 90), ("t-c", 50), ("t-d", 90), ("t-e", 0)]:
        await store.create(task_id, priority, {}, task_id=task_id)

    first = await store.claim("w1", 3)
    second = await store.claim("w1", 3)

    assert [t["id"] for t in first] == ["t-b", "t-d", "t-c"]
    assert [t["id"] for t in second] == ["t-a", "t-e"]
    assert await store.claim("w1", 3) == []


async def test_claim_moves_task_and_appends_one_event_per_task(
    store: TaskStore,
    instances: InstanceStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await instances.register("w1", ["worker"], 10, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.create("b", 50, {}, task_id="t-2")
    now = clock.advance(5)

    claimed = await store.claim("w1", 2)

    for snapshot in claimed:
        stored = await redis_client.hgetall(keys.task(snapshot["id"]))
        assert stored == snapshot
        assert stored["status"] == "in_progress"
        assert stored["assignedTo"] == "w1"
        assert stored["assignedAt"] == str(now)
        assert stored["updatedAt"] == str(now)
        assert stored["attempts"] == "1"
    assert await redis_client.zcard(keys.pending) == 0
    assert await redis_client.zrange(keys.held("w1"), 0, -1) == ["t-1", "t-2"]
    assert await redis_client.zrange(keys.status_index("in_progress"), 0, -1) == ["t-1", "t-2"]
    claims = [e for e in await stream_events(redis_client, keys) if e["type"] == "claimed"]
    assert [(e["task_id"], e["instance_id"]) for e in claims] == [("t-1", "w1"), ("t-2", "w1")]
    assert [json.loads(e["task"]) for e in claims] == claimed
    await assert_consistent(redis_client, keys)


async def test_capacity_limits_the_claim_and_then_refuses(store: TaskStore, instances: InstanceStore) -> None:
    await instances.register("w1", ["worker"], 2, {})
    for i in range(4):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i}")

    assert len(await store.claim("w1", 5)) == 2
    with pytest.raises(DomainError) as refused:
        await store.claim("w1", 1)
    assert refused.value.code is ResultCode.AT_CAPACITY
    assert "already holds 2 tasks" in refused.value.message


async def test_empty_queue_still_checks_the_worker(store: TaskStore, instances: InstanceStore) -> None:
    await instances.register("w1", ["worker"], 2, {})
    assert await store.claim("w1", 1) == []
    with pytest.raises(DomainError):
        await store.claim("nobody", 1)


async def test_script_skips_stale_and_denied_candidates(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await instances.register("w1", ["worker"], 10, {})
    await instances.register("w2", ["worker"], 10, {})
    for i in range(3):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i}")
    await redis_client.hset(keys.task("t-1"), "deny", json.dumps(["w1"]))
    await store.claim("w2", 1)  # takes t-0: a stale candidate for the next call

    result = await claim_from(executor, keys, clock(), "w1", 3, ["t-0", "t-1", "t-2"])

    assert result.code is ResultCode.OK
    outcome = json.loads(result.payload)
    assert [t["id"] for t in outcome["tasks"]] == ["t-2"]
    assert (outcome["stale"], outcome["denied"], outcome["free"]) == (1, 1, 9)
    await assert_consistent(redis_client, keys)


async def test_store_reads_past_denied_tasks(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 100, {})
    await instances.register("w2", ["worker"], 100, {})
    for i in range(80):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i:02d}")
        if i < 75:  # more than the head a claim returns (64): w1 must read past them
            await redis_client.hset(keys.task(f"t-{i:02d}"), "deny", json.dumps(["w1"]))
    await store.claim("w2", 1)  # takes t-00 and leaves the head as a hint

    claimed = await store.claim("w1", 3)

    assert [t["id"] for t in claimed] == ["t-75", "t-76", "t-77"]


async def test_a_pending_task_ahead_of_the_candidates_stops_the_script(
    store: TaskStore, instances: InstanceStore, executor: ScriptExecutor, keys: Keyspace, clock: FakeClock
) -> None:
    """Candidates read before a higher-priority task arrived are never taken before it: the script
    stops ("behind") and returns the current head for the next round."""
    await instances.register("w1", ["worker"], 10, {})
    await store.create("old", 50, {}, task_id="t-old")
    await store.create("urgent", 90, {}, task_id="t-urgent")
    result = await claim_from(executor, keys, clock(), "w1", 1, ["t-old"])
    outcome = json.loads(result.payload)
    assert outcome["tasks"] == []
    assert outcome["behind"] is True
    assert outcome["heads"] == {"default": ["t-urgent", "t-old"]}
    assert outcome["pending"] == 2


async def test_a_stale_hint_never_breaks_queue_order(store: TaskStore, instances: InstanceStore) -> None:
    await instances.register("w1", ["worker"], 10, {})
    for i in range(3):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i}")
    assert [t["id"] for t in await store.claim("w1", 1)] == ["t-0"]  # leaves [t-1, t-2] as hint
    await store.create("urgent", 99, {}, task_id="t-urgent")
    assert [t["id"] for t in await store.claim("w1", 2)] == ["t-urgent", "t-1"]


@pytest.mark.skipif(ON_CLUSTER, reason="counts commands on one Redis")
async def test_a_claim_after_a_claim_reads_no_candidates_from_redis(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis
) -> None:
    """The head a claim returns is the next claim's candidates: one round trip per claim."""
    await instances.register("w1", ["worker"], 100, {})
    for i in range(20):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i:02d}")
    await store.claim("w1", 1)
    await redis_client.config_resetstat()
    claimed = [t["id"] for _ in range(5) for t in await store.claim("w1", 2)]
    assert claimed == [f"t-{i:02d}" for i in range(1, 11)]
    stats = await redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 5
    # Commands a script runs count too: the two ZRANGEs per claim are the script's own (the head it
    # returns, and next_due), none was sent before it.
    assert stats["cmdstat_zrange"]["calls"] == 10
