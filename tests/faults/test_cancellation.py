"""Cancelled calls leave no half-done work: each script either ran (whole, with its event) or not."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import grpc
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.invariants import assert_consistent, members, stream_events


async def test_cancelled_calls_are_all_or_nothing(
    server: ClaudebenchServer,
    tasks: tasks_pb2_grpc.TaskServiceStub,
    system: system_pb2_grpc.SystemServiceStub,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    rng = random.Random(7)
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", max_tasks=1000))

    async def lifecycle(i: int) -> None:
        created = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"c{i}"))).task
        for claimed in (await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1"))).tasks:
            await tasks.CompleteTask(
                tasks_pb2.CompleteTaskRequest(
                    task_id=claimed.id, worker_id="w1", result=struct_pb2.Value(number_value=i)
                )
            )
        await tasks.UpdateTask(tasks_pb2.UpdateTaskRequest(task_id=created.id, text=f"c{i}!"))

    running = [asyncio.create_task(lifecycle(i)) for i in range(200)]
    for task in running:
        await asyncio.sleep(rng.random() * 0.002)
        if rng.random() < 0.5:
            task.cancel()
    outcomes = await asyncio.gather(*running, return_exceptions=True)
    assert any(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert all(o is None or isinstance(o, asyncio.CancelledError | grpc.aio.AioRpcError) for o in outcomes)
    await asyncio.sleep(0.5)  # let calls the server had already started finish

    await assert_consistent(redis_client, keys)
    created = Counter(e["task_id"] for e in await stream_events(redis_client, keys) if e["type"] == "created")
    assert set(created) == set(await members(redis_client, keys.all_tasks))
    assert set(created.values()) == {1}
