"""Script contract tests call the stores (which build KEYS/ARGV) with a clock the test controls."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.coordination import CoordinationSettings, CoordinationStore
from claudebench.store.instances import FleetSettings, InstanceStore
from claudebench.store.tasks import TaskStore, TaskStoreSettings

TTL_MS = 30_000
START_MS = 1_700_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> TaskStore:
    return TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock)


@pytest.fixture
def instances(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> InstanceStore:
    return InstanceStore(executor, redis_client, keys, FleetSettings(instance_ttl_ms=TTL_MS), clock)


@pytest.fixture
def coordination(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> CoordinationStore:
    return CoordinationStore(
        executor, redis_client, keys, CoordinationSettings(instance_ttl_ms=TTL_MS), clock
    )
