"""REASSIGN_FAILED_TASKS and INSTANCE_UNREGISTER: every held task comes back exactly once."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.lifecycle import RetryPolicy
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, entries, members, stream_events, task_hash
from tests.lua.conftest import TTL_MS, FakeClock


@pytest.fixture
async def w1_holds_three(store: TaskStore, instances: InstanceStore) -> list[str]:
    await instances.register("w1", ["worker"], 5, {})
    for i in range(4):
        await store.create(f"task {i}", 50, {}, task_id=f"t-{i}")
    return [t["id"] for t in await store.claim("w1", 3)]


async def test_recovery_requeues_every_held_task_once(
    w1_holds_three: list[str],
    instances: InstanceStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    clock.advance(TTL_MS + 1)

    outcome = await instances.recover("w1", TTL_MS)
    again = await instances.recover("w1", TTL_MS)

    assert (outcome.reaped, outcome.requeued, outcome.failed) == (True, 3, 0)
    assert (again.reaped, again.requeued) == (False, 0)
    for task_id in w1_holds_three:
        task = await task_hash(redis_client, keys.task(task_id))
        assert (task["status"], task["assignedTo"], task["failovers"]) == ("pending", "", "1")
        assert json.loads(task["deny"]) == ["w1"]
        assert task["attempts"] == "1"
    assert await members(redis_client, keys.pending) == ["t-0", "t-1", "t-2", "t-3"]
    reassigned = [e["task_id"] for e in await stream_events(redis_client, keys) if e["type"] == "reassigned"]
    assert sorted(reassigned) == sorted(w1_holds_three)
    instance = await task_hash(redis_client, keys.instance("w1"))
    assert (instance["status"], instance["offlineAt"]) == ("offline", str(clock()))
    assert await redis_client.pttl(keys.instance("w1")) > 0
    assert await redis_client.zscore(keys.liveness, "w1") is None
    assert await redis_client.zscore(keys.offline, "w1") == clock()
    assert await redis_client.exists(keys.held("w1"), keys.leader) == 0
    (failed_event,) = [e for _, e in await entries(redis_client, keys.system_events)]
    assert failed_event["type"] == "instance.failed"
    await assert_consistent(redis_client, keys)


async def test_a_live_instance_is_left_alone(
    w1_holds_three: list[str], instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    outcome = await instances.recover("w1", TTL_MS)
    assert not outcome.reaped
    assert len(await members(redis_client, keys.held("w1"))) == 3


async def test_denied_tasks_are_not_handed_back_to_the_dead_instance(
    w1_holds_three: list[str], store: TaskStore, instances: InstanceStore, clock: FakeClock
) -> None:
    clock.advance(TTL_MS + 1)
    await instances.recover("w1", TTL_MS)
    await instances.register("w1", ["worker"], 5, {})

    claimed = await store.claim("w1", 5)

    assert [t["id"] for t in claimed] == ["t-3"]


async def test_too_many_failovers_fail_the_task(
    w1_holds_three: list[str],
    instances: InstanceStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await redis_client.hset(keys.task("t-0"), "failovers", 3)  # the default limit is 3
    clock.advance(TTL_MS + 1)

    outcome = await instances.recover("w1", TTL_MS)

    assert (outcome.requeued, outcome.failed) == (2, 1)
    task = await task_hash(redis_client, keys.task("t-0"))
    assert task["status"] == "failed"
    assert task["error"] == "failed over 4 times (more than 3): its holder w1 stopped responding"
    await assert_consistent(redis_client, keys)


async def test_a_changed_held_set_is_stale(
    w1_holds_three: list[str],
    executor: ScriptExecutor,
    instances: InstanceStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    result = await executor.run(
        "REASSIGN_FAILED_TASKS",
        keys={
            **instances._departure_keys("w1"),
            "idx_failed": keys.status_index("failed"),
            "finished_failed": keys.finished("failed"),
            "due": keys.due,
            "idx_scheduled": keys.status_index("scheduled"),
        },
        args={
            "instance_id": "w1",
            "now_ms": clock.advance(TTL_MS + 1),
            "timeout_ms": TTL_MS,
            "max_failovers": 3,
            "maxlen": 100,
            "system_maxlen": 100,
            "offline_retention_ms": 1000,
            "retry_at": "{}",
        },
        extra_keys=[keys.task("t-0")],
        extra_args=["t-0"],
    )
    assert result.code is ResultCode.STALE
    assert await redis_client.hget(keys.instance("w1"), "status") == "active"


async def test_unregister_releases_everything(
    w1_holds_three: list[str],
    instances: InstanceStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    released = await instances.unregister("w1")

    assert released == 3
    assert await redis_client.exists(keys.instance("w1"), keys.held("w1"), keys.leader) == 0
    assert await redis_client.zscore(keys.liveness, "w1") is None
    assert await redis_client.hget(keys.gossip, "w1") is None
    assert len(await members(redis_client, keys.pending)) == 4
    released_events = [e for e in await stream_events(redis_client, keys) if e["type"] == "released"]
    assert len(released_events) == 3
    with pytest.raises(DomainError) as unknown:
        await instances.unregister("w1")
    assert unknown.value.code is ResultCode.NOT_FOUND
    await assert_consistent(redis_client, keys)


async def test_registering_again_after_going_offline(
    w1_holds_three: list[str],
    instances: InstanceStore,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    clock.advance(TTL_MS + 1)
    await instances.recover("w1", TTL_MS)
    await instances.register("w1", ["worker"], 5, {})

    assert await redis_client.hget(keys.instance("w1"), "status") == "active"
    assert await redis_client.pttl(keys.instance("w1")) == -1
    assert await redis_client.zscore(keys.offline, "w1") is None
    assert await redis_client.zscore(keys.liveness, "w1") == clock()


async def test_tasks_with_a_retry_policy_follow_it_when_their_holder_dies(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff_ms=500, jitter=0)
    await store.create("retry me", 50, {}, task_id="t-retry", retry=policy)
    await store.create("last try", 40, {}, task_id="t-last", retry=RetryPolicy(max_attempts=2, jitter=0))
    await store.create("plain", 30, {}, task_id="t-plain")
    await instances.register("w1", ["worker"], 5, {})
    await store.claim("w1", 3)
    await redis_client.hset(keys.task("t-last"), "attempts", 2)  # its last attempt is the one dying
    now = clock.advance(TTL_MS + 1)
    outcome = await instances.recover("w1", TTL_MS)
    assert (outcome.requeued, outcome.scheduled, outcome.failed) == (1, 1, 1)
    retry = await task_hash(redis_client, keys.task("t-retry"))
    assert (retry["status"], retry["runAt"], retry["error"]) == (
        "scheduled",
        str(now + 500),
        "its holder w1 stopped responding",
    )
    last = await task_hash(redis_client, keys.task("t-last"))
    assert (last["status"], last["error"]) == ("failed", "its holder w1 stopped responding; no attempt left")
    plain = await task_hash(redis_client, keys.task("t-plain"))
    assert (plain["status"], plain["deny"]) == ("pending", '["w1"]')
    events = {
        e["task_id"]: e["type"] for e in await stream_events(redis_client, keys) if e["instance_id"] == "w1"
    }
    assert events == {"t-retry": "scheduled", "t-last": "failed", "t-plain": "reassigned"}
    await assert_consistent(redis_client, keys)
