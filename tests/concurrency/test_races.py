"""Real concurrent clients (separate channels, separate processes) racing for the same tasks."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.concurrency.claimer import race
from tests.invariants import assert_consistent, stream_events


@pytest.fixture
async def channels(server: ClaudebenchServer) -> AsyncIterator[list[grpc.aio.Channel]]:
    """Ten independent client connections to the server."""
    opened = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(10)]
    yield opened
    for channel in opened:
        await channel.close()


def task_stubs(channels: list[grpc.aio.Channel]) -> list[tasks_pb2_grpc.TaskServiceStub]:
    return [tasks_pb2_grpc.TaskServiceStub(c) for c in channels]


async def test_ten_concurrent_creates_get_ten_ids(channels: list[grpc.aio.Channel]) -> None:
    stubs = task_stubs(channels)
    responses = await asyncio.gather(
        *(s.CreateTask(tasks_pb2.CreateTaskRequest(text=f"task {i}")) for i, s in enumerate(stubs))
    )
    assert len({r.task.id for r in responses}) == 10


async def test_eight_claiming_processes_take_every_task_exactly_once(
    server: ClaudebenchServer,
    tasks: tasks_pb2_grpc.TaskServiceStub,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    total = 2000
    await asyncio.gather(
        *(
            tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"task {i}", priority=i % 101))
            for i in range(total)
        )
    )
    per_worker = await race([f"127.0.0.1:{server.port}"], workers=8)
    claimed = Counter(task_id for ids in per_worker for task_id in ids)
    all_ids = set(await redis_client.zrange(keys.all_tasks, 0, -1))
    assert set(claimed) == all_ids
    assert len(all_ids) == total
    assert max(claimed.values()) == 1, "a task was claimed twice"
    assert sum(1 for ids in per_worker if ids) > 1, "the claimers did not actually race"
    assert await redis_client.zcard(keys.status_index("completed")) == total
    events = await stream_events(redis_client, keys)
    handed_over = Counter(e["task_id"] for e in events if e["type"] in ("claimed", "assigned"))
    assert handed_over == Counter({task_id: 1 for task_id in all_ids})
    await assert_consistent(redis_client, keys)


async def test_two_workers_racing_to_assign_one_task(
    channels: list[grpc.aio.Channel], redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    stubs = task_stubs(channels)
    system = system_pb2_grpc.SystemServiceStub(channels[0])
    for worker in ("w1", "w2"):
        await system.Register(system_pb2.RegisterRequest(instance_id=worker, max_tasks=100))
    for round_ in range(20):
        task = (await stubs[0].CreateTask(tasks_pb2.CreateTaskRequest(text=f"r{round_}"))).task
        outcomes = await asyncio.gather(
            stubs[1].AssignTask(tasks_pb2.AssignTaskRequest(task_id=task.id, instance_id="w1")),
            stubs[2].AssignTask(tasks_pb2.AssignTaskRequest(task_id=task.id, instance_id="w2")),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if isinstance(o, tasks_pb2.AssignTaskResponse)]
        losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(winners) == 1
        assert [e.code() for e in losers] == [grpc.StatusCode.FAILED_PRECONDITION]
    await assert_consistent(redis_client, keys)


async def test_concurrent_completions_count_once(
    channels: list[grpc.aio.Channel], redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    stubs = task_stubs(channels)
    system = system_pb2_grpc.SystemServiceStub(channels[0])
    await system.Register(system_pb2.RegisterRequest(instance_id="w1"))
    task = (await stubs[0].CreateTask(tasks_pb2.CreateTaskRequest(text="once"))).task
    await stubs[0].ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1"))

    # Different outcomes at once: exactly one wins, the others are refused.
    replies = await asyncio.gather(
        *(
            s.CompleteTask(
                tasks_pb2.CompleteTaskRequest(
                    task_id=task.id, worker_id="w1", result=struct_pb2.Value(number_value=i)
                )
            )
            for i, s in enumerate(stubs)
        ),
        return_exceptions=True,
    )
    won = [r for r in replies if isinstance(r, tasks_pb2.CompleteTaskResponse)]
    assert len(won) == 1
    assert {r.code() for r in replies if isinstance(r, grpc.aio.AioRpcError)} <= {
        grpc.StatusCode.FAILED_PRECONDITION
    }
    # The same outcome again, at once: every retry answers the stored task.
    retries = await asyncio.gather(
        *(
            s.CompleteTask(
                tasks_pb2.CompleteTaskRequest(task_id=task.id, worker_id="w1", result=won[0].task.result)
            )
            for s in stubs
        )
    )
    assert {r.task.SerializeToString() for r in retries} == {won[0].task.SerializeToString()}
    finished = [e for e in await stream_events(redis_client, keys) if e["type"] == "completed"]
    assert len(finished) == 1


async def test_concurrent_metadata_merges_lose_nothing(channels: list[grpc.aio.Channel]) -> None:
    stubs = task_stubs(channels)
    task = (await stubs[0].CreateTask(tasks_pb2.CreateTaskRequest(text="shared"))).task

    def patch(i: int) -> tasks_pb2.UpdateTaskRequest:
        metadata = struct_pb2.Struct()
        metadata.update({f"key{i}": i})
        return tasks_pb2.UpdateTaskRequest(task_id=task.id, metadata=metadata)

    await asyncio.gather(*(s.UpdateTask(patch(i)) for i, s in enumerate(stubs)))

    final = (await stubs[0].GetTask(tasks_pb2.GetTaskRequest(task_id=task.id))).task
    assert dict(final.metadata) == {f"key{i}": float(i) for i in range(10)}
