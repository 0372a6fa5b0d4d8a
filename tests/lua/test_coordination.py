"""COORDINATE_BATCH, QUORUM_VOTE, GOSSIP_HEALTH_UPDATE, SYNC_GLOBAL_STATE, LEASE_ACQUIRE,
AGGREGATE_GLOBAL_METRICS, GET_SYSTEM_HEALTH and GET_SYSTEM_STATE."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.coordination import CoordinationSettings, CoordinationStore
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.invariants import entries
from tests.lua.conftest import TTL_MS, FakeClock


async def system_events(client: aioredis.Redis, keys: Keyspace) -> list[dict[str, str]]:
    return [fields for _, fields in await entries(client, keys.system_events)]


async def test_batch_has_one_holder_and_visible_progress(
    coordination: CoordinationStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    first = await coordination.coordinate_batch("b1", "w1", 10, 0, False)
    rival = await coordination.coordinate_batch("b1", "w2", 10, 0, False)
    other_batch = await coordination.coordinate_batch("b2", "w2", 5, 0, False)
    progress = await coordination.coordinate_batch("b1", "w1", 0, 4, False)
    seen_by_rival = await coordination.coordinate_batch("b1", "w2", 0, 0, False)
    backwards = await coordination.coordinate_batch("b1", "w1", 0, 2, False)

    assert (first.acquired, first.processor) == (True, "w1")
    assert (rival.acquired, rival.processor) == (False, "w1")
    assert other_batch.acquired
    assert (progress.processed, progress.total) == (4, 10)
    assert (seen_by_rival.acquired, seen_by_rival.processed) == (False, 4)
    assert backwards.processed == 4  # progress never goes back

    done = await coordination.coordinate_batch("b1", "w1", 0, 10, True)
    after = await coordination.coordinate_batch("b1", "w2", 0, 0, True)
    assert (done.acquired, done.completed) == (True, True)
    assert (after.acquired, after.completed, after.processor) == (False, True, "w1")
    assert await redis_client.exists(keys.batch_lock("b1")) == 0
    assert [e["type"] for e in await system_events(redis_client, keys)] == ["batch.completed"]
    assert await redis_client.pttl(keys.batch("b1")) > 0


async def test_a_dead_holders_lock_lapses_and_progress_survives(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    short = CoordinationStore(
        executor, redis_client, keys, CoordinationSettings(batch_lock_ttl_ms=100), clock
    )
    await short.coordinate_batch("b1", "w1", 10, 6, False)
    await asyncio.sleep(0.25)  # w1 died: its lock runs out (a real Redis TTL)

    takeover = await short.coordinate_batch("b1", "w2", 0, 0, False)

    assert (takeover.acquired, takeover.processor, takeover.processed) == (True, "w2", 6)


async def test_quorum_needs_a_majority_of_agreeing_votes(
    coordination: CoordinationStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    for voter, value in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "y")]:
        state = await coordination.quorum_vote("split", voter, value, 5)
        assert not state.reached
    split = await coordination.quorum_vote("split", "e", "z", 5)
    assert (split.reached, split.votes, split.agreeing) == (False, 5, 2)

    assert not (await coordination.quorum_vote("d1", "a", "go", 5)).reached
    assert not (await coordination.quorum_vote("d1", "a", "go", 5)).reached  # a re-vote counts once
    assert not (await coordination.quorum_vote("d1", "b", "go", 5)).reached
    reached = await coordination.quorum_vote("d1", "c", "go", 5)
    late = await coordination.quorum_vote("d1", "d", "stop", 5)

    assert (reached.reached, reached.decision, reached.votes, reached.agreeing) == (True, "go", 3, 3)
    assert (late.voted, late.reached, late.decision, late.votes) == (False, True, "go", 3)
    events = await system_events(redis_client, keys)
    assert [e["type"] for e in events] == ["quorum.decision.made"]
    assert await redis_client.hlen(keys.quorum_votes("split")) == 5


async def test_quorum_total_defaults_to_live_instances(
    coordination: CoordinationStore, instances: InstanceStore
) -> None:
    for name in ("a", "b", "c"):
        await instances.register(name, [], 1, {})
    first = await coordination.quorum_vote("q", "a", "yes", None)
    second = await coordination.quorum_vote("q", "b", "yes", None)
    assert (first.total, first.reached) == (3, False)
    assert second.reached


async def test_gossip_counts_and_partition_rule(
    instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    for name in ("a", "b", "c"):
        assert not (await instances.gossip(name, "healthy"))["partitionDetected"]
    await instances.gossip("a", "unhealthy")
    suspected = await instances.gossip("b", "unhealthy")
    assert suspected == {"partitionDetected": True, "healthy": 1, "total": 3}
    assert await redis_client.exists(keys.partition) == 1
    await instances.gossip("b", "healthy")
    assert await redis_client.exists(keys.partition) == 0
    assert await redis_client.hgetall(keys.gossip_counts) == {"total": "3", "healthy": "2"}


async def test_state_version_only_grows_and_lease_has_one_owner(
    coordination: CoordinationStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    assert [await coordination.sync_global_state({"n": i}) for i in range(3)] == [1, 2, 3]
    assert await coordination.acquire_lease("job", "r1", 10_000)
    assert await coordination.acquire_lease("job", "r1", 10_000)
    assert not await coordination.acquire_lease("job", "r2", 10_000)
    await redis_client.delete(keys.lease("job"))  # r1's lease ran out
    assert await coordination.acquire_lease("job", "r2", 10_000)


async def test_metrics_health_and_state_from_counters(
    coordination: CoordinationStore,
    instances: InstanceStore,
    store: TaskStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await instances.register("w2", ["worker"], 5, {})
    for i in range(4):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i}")
    clock.advance(200)
    await store.claim("w1", 3)
    await store.complete("t-0", "w1", "result", "1")
    await store.complete("t-1", "w1", "error", "no")
    clock.advance(1000)
    await instances.heartbeat("w1")
    clock.advance(TTL_MS)  # w2 fell silent; w1 heartbeated 30 s ago exactly: still live

    metrics = await coordination.aggregate_metrics()
    health = await coordination.health_counts()
    state = await coordination.system_state(["w1", "w2", "gone"], 2)

    assert {k: metrics[k] for k in ("pending", "in_progress", "completed", "failed")} == {
        "pending": 1,
        "in_progress": 1,
        "completed": 1,
        "failed": 1,
    }
    assert (metrics["completedTotal"], metrics["failedTotal"]) == (1, 1)
    assert metrics["averageWaitMs"] == 200
    assert metrics["throughputPerSecond"] == pytest.approx(2 / 60)  # both within the last minute
    assert (metrics["liveInstances"], metrics["staleInstances"]) == (1, 1)
    assert health == {"live": 1, "stale": 1, "offline": 0, "partition": False}
    assert state["counts"] == {
        "pending": 1,
        "in_progress": 1,
        "completed": 1,
        "failed": 1,
        "scheduled": 0,
        "cancelled": 0,
    }
    assert [(i["id"], i["held"], i["maxTasks"]) for i in state["instances"]] == [("w1", 1, 5), ("w2", 0, 5)]
    assert [entry[0] for entry in state["events"]] == [
        i for i, _ in reversed(await entries(redis_client, keys.events))
    ][:2]
    assert await redis_client.hget(keys.instance("w1"), "tasksCompleted") == "1"


async def test_throughput_counts_the_recent_window(
    coordination: CoordinationStore,
    instances: InstanceStore,
    store: TaskStore,
    clock: FakeClock,
) -> None:
    await instances.register("w1", [], 100, {})
    for i in range(30):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i}")
    await store.claim("w1", 30)
    for i in range(30):
        await store.complete(f"t-{i}", "w1", "result", "1")
        if i % 10 == 9:
            clock.advance(1000)
    metrics = await coordination.aggregate_metrics()
    assert metrics["throughputPerSecond"] == 30 / 60
