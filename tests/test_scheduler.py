"""The lifecycle scheduler: one replica at a time runs the registered jobs, with the injected clock;
a failing job does not stop the others; the lease moves to another replica when its holder stops."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis.asyncio as aioredis

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.scheduler import Job, Scheduler
from claudebench.scripts.executor import ScriptExecutor
from claudebench.server import ClaudebenchServer
from claudebench.store.coordination import CoordinationSettings, CoordinationStore
from claudebench.tasks_util import cancel_and_wait
from tests.api.helpers import eventually


@pytest.fixture
def coordination(executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace) -> CoordinationStore:
    return CoordinationStore(executor, redis_client, keys, CoordinationSettings())


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def job(self, name: str) -> Job:
        async def run(now_ms: int) -> None:
            self.calls.append((name, now_ms))

        return run


async def test_the_lease_holder_runs_every_job_in_order_with_the_clock(
    coordination: CoordinationStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    now = [1_000]
    one = Scheduler(coordination, 0.5, clock=lambda: now[0], replica_id="one")
    two = Scheduler(coordination, 0.5, clock=lambda: now[0], replica_id="two")
    seen = Recorder()
    for scheduler in (one, two):
        scheduler.register("promote", seen.job(f"{scheduler.replica_id}:promote"))
        scheduler.register("expire", seen.job(f"{scheduler.replica_id}:expire"))
    assert one.jobs == ["promote", "expire"]

    assert await one.tick() is True
    assert await two.tick() is False
    now[0] = 2_500
    assert await one.tick() is True
    assert seen.calls == [
        ("one:promote", 1_000),
        ("one:expire", 1_000),
        ("one:promote", 2_500),
        ("one:expire", 2_500),
    ]
    assert await redis_client.get(keys.lease("scheduler")) == "one"
    ttl = await redis_client.pttl(keys.lease("scheduler"))
    assert 0 < ttl <= 1_500  # three intervals


async def test_a_failing_job_does_not_stop_the_others(coordination: CoordinationStore) -> None:
    seen = Recorder()

    async def broken(now_ms: int) -> None:
        raise RuntimeError("a bug")

    scheduler = Scheduler(coordination, 1.0, clock=lambda: 7, replica_id="r")
    scheduler.register("broken", broken)
    scheduler.register("after", seen.job("after"))
    assert await scheduler.tick() is True
    assert seen.calls == [("after", 7)]
    with pytest.raises(ValueError, match="already registered"):
        scheduler.register("after", seen.job("again"))
    with pytest.raises(ValueError, match="must be positive"):
        Scheduler(coordination, 0)


async def test_another_replica_takes_over_when_the_holder_stops(coordination: CoordinationStore) -> None:
    seen = Recorder()
    interval = 0.05  # lease: 150 ms of real Redis TTL
    first = Scheduler(coordination, interval, replica_id="first")
    second = Scheduler(coordination, interval, replica_id="second")
    first.register("job", seen.job("first"))
    second.register("job", seen.job("second"))
    running = asyncio.create_task(first.run_forever())
    try:

        async def first_ran() -> bool:
            return any(name == "first" for name, _ in seen.calls)

        await eventually(first_ran)
        assert await second.tick() is False
    finally:
        await cancel_and_wait([running])

    async def second_runs() -> bool:
        return await second.tick()

    await eventually(second_runs)
    assert seen.calls[-1][0] == "second"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, scheduler_interval_s=0.05)


async def test_the_server_runs_its_scheduler(server: ClaudebenchServer) -> None:
    assert server.scheduler.jobs == ["promote_due", "expire_leases", "expire_finished"]
    seen = Recorder()
    server.scheduler.register("probe", seen.job("probe"))

    async def ran() -> bool:
        return bool(seen.calls)

    await eventually(ran)
