"""INSTANCE_REGISTER and INSTANCE_HEARTBEAT: liveness index, leader lease, refusals."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.lua.conftest import START_MS, TTL_MS, FakeClock


async def test_register_records_instance_liveness_and_leader(
    instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    first = await instances.register("w1", ["worker"], 4, {"zone": "a"})
    second = await instances.register("w2", ["worker"], 4, {})

    assert (first.became_leader, first.is_leader) == (True, True)
    assert (second.became_leader, second.is_leader) == (False, False)
    assert await redis_client.hgetall(keys.instance("w1")) == {
        "id": "w1",
        "roles": '["worker"]',
        "maxTasks": "4",
        "metadata": '{"zone":"a"}',
        "queues": '["default"]',
        "status": "active",
        "lastSeen": str(START_MS),
        "registeredAt": str(START_MS),
    }
    assert await redis_client.zrange(keys.liveness, 0, -1, withscores=True) == [
        ("w1", float(START_MS)),
        ("w2", float(START_MS)),
    ]
    assert await redis_client.get(keys.leader) == "w1"
    assert 0 < await redis_client.pttl(keys.leader) <= TTL_MS


async def test_reregistering_keeps_held_tasks(
    instances: InstanceStore, store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 4, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.claim("w1", 1)

    again = await instances.register("w1", ["worker", "reviewer"], 8, {})

    assert again.is_leader
    assert await redis_client.zrange(keys.held("w1"), 0, -1) == ["t-1"]
    assert await redis_client.hget(keys.instance("w1"), "maxTasks") == "8"
    roles = await redis_client.hget(keys.instance("w1"), "roles")
    assert roles is not None
    assert json.loads(roles) == ["worker", "reviewer"]


async def test_heartbeat_refreshes_and_takes_over_an_expired_lease(
    instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    await instances.register("w1", [], 1, {})
    await instances.register("w2", [], 1, {})
    now = clock.advance(1000)

    beat = await instances.heartbeat("w2")
    assert not beat.is_leader
    assert await redis_client.hget(keys.instance("w2"), "lastSeen") == str(now)
    assert await redis_client.zscore(keys.liveness, "w2") == now

    await redis_client.delete(keys.leader)  # w1's lease ran out
    takeover = await instances.heartbeat("w2")
    assert (takeover.became_leader, takeover.is_leader) == (True, True)
    assert (await instances.heartbeat("w2")).became_leader is False


async def test_heartbeat_refusals(
    instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    with pytest.raises(DomainError) as unknown:
        await instances.heartbeat("ghost")
    assert unknown.value.code is ResultCode.NOT_FOUND

    await instances.register("w1", [], 1, {})
    await redis_client.hset(keys.instance("w1"), "status", "offline")
    with pytest.raises(DomainError) as offline:
        await instances.heartbeat("w1")
    assert offline.value.code is ResultCode.INSTANCE_OFFLINE
