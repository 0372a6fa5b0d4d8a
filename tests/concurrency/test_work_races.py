"""Push dispatch under real concurrency: streaming workers on two replicas and unary long-poll
claimers race for the same tasks; each task is handed out and completed exactly once, no worker
ever holds more than its capacity, and a broken stream's tasks come back by liveness recovery."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, struct_pb2

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import serving, until
from tests.api.work_helpers import Stream, System, Tasks
from tests.invariants import assert_consistent, stream_events

TASKS = 1200
CAPACITY = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, instance_ttl_ms=1500, heartbeat_interval_ms=200, recovery_interval_s=0.1
    )


async def _heartbeat(system: System, ids: list[str]) -> None:
    while True:
        for worker_id in ids:
            await system.Heartbeat(system_pb2.HeartbeatRequest(instance_id=worker_id))
        await asyncio.sleep(0.2)


async def _unary_claimer(tasks: Tasks, worker_id: str, got: list[str], stop: asyncio.Event) -> None:
    wait = duration_pb2.Duration(nanos=200_000_000)
    while not stop.is_set():
        reply = await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id=worker_id, max_tasks=2, wait=wait))
        for task in reply.tasks:
            got.append(task.id)
            await tasks.CompleteTask(
                tasks_pb2.CompleteTaskRequest(
                    task_id=task.id, worker_id=worker_id, result=struct_pb2.Value(string_value=worker_id)
                )
            )


@pytest.mark.timeout(120)
async def test_streams_on_two_replicas_and_unary_claimers_each_task_once(
    settings: Settings, tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    async with serving(settings) as (_, other):
        sides = [
            (tasks, system),
            (tasks_pb2_grpc.TaskServiceStub(other), system_pb2_grpc.SystemServiceStub(other)),
        ]
        streams = [
            await Stream.open(*sides[i % 2], f"s{i}", max_tasks=CAPACITY, auto_complete=True)
            for i in range(8)
        ]
        for unary_id in ("u0", "u1"):
            await system.Register(
                system_pb2.RegisterRequest(instance_id=unary_id, roles=["worker"], max_tasks=2)
            )
        ids = [s.worker_id for s in streams] + ["u0", "u1"]
        beating = asyncio.create_task(_heartbeat(system, ids))
        stop = asyncio.Event()
        unary_got: list[list[str]] = [[], []]
        claimers = [
            asyncio.create_task(_unary_claimer(sides[i][0], f"u{i}", unary_got[i], stop)) for i in range(2)
        ]

        async def produce(stub: Tasks, start: int) -> None:
            for first in range(start, TASKS, 100):
                batch = [
                    tasks_pb2.CreateTaskRequest(text=f"t{n}") for n in range(first, min(first + 50, TASKS))
                ]
                await stub.CreateTasks(tasks_pb2.CreateTasksRequest(tasks=batch))

        await asyncio.gather(produce(sides[0][0], 0), produce(sides[1][0], 50))

        def finished() -> bool:
            handed = sum(len(s.pushed) for s in streams) + sum(len(g) for g in unary_got)
            return handed >= TASKS and all(s.outstanding == 0 for s in streams)

        await until(finished, 90)
        stop.set()
        await asyncio.gather(*claimers)
        beating.cancel()

        everything = [t.id for s in streams for t in s.pushed] + [i for g in unary_got for i in g]
        assert len(everything) == TASKS
        assert len(set(everything)) == TASKS  # nobody got a task someone else got
        assert max(s.most_outstanding for s in streams) <= CAPACITY
        assert all(s.pushed for s in streams)  # the work was spread (every stream got some)
        events = await stream_events(redis_client, keys)
        claimed = Counter(e["task_id"] for e in events if e["type"] == "claimed")
        completed = Counter(e["task_id"] for e in events if e["type"] == "completed")
        assert set(claimed.values()) == {1}
        assert set(completed.values()) == {1}
        assert len(completed) == TASKS
        for stream in streams:
            stream.cancel()
        await assert_consistent(redis_client, keys)


async def test_a_broken_stream_of_a_dead_worker_is_recovered_once(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    dies = await Stream.open(tasks, system, "dies", max_tasks=2)
    ids = [(await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}"))).task.id for i in range(2)]
    await dies.wait_for(2)
    dies.cancel()  # broken without a clean close; "dies" never heartbeats again
    lives = await Stream.open(tasks, system, "lives", max_tasks=5)
    beating = asyncio.create_task(_heartbeat(system, ["lives"]))
    await lives.wait_for(2, seconds=15)  # after the liveness TTL, recovery gives them back
    await asyncio.sleep(0.5)
    beating.cancel()
    assert sorted(t.id for t in lives.pushed) == sorted(ids)
    for task_id in ids:
        assert (await lives.complete(task_id)).code == 0
    events = await stream_events(redis_client, keys)
    completed = Counter(e["task_id"] for e in events if e["type"] == "completed")
    assert completed == Counter(ids)
    lives.cancel()
    await assert_consistent(redis_client, keys)
