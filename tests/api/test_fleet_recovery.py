"""Worker death and recovery through real stubs, with a short liveness TTL: tasks come back,
exactly once with two replicas, and a quiet leader is replaced."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2 as pb
from claudebench.v1 import system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import create, eventually, pending_ids, rpc_error
from tests.invariants import assert_consistent, entries, stream_events

System = system_pb2_grpc.SystemServiceStub
Tasks = tasks_pb2_grpc.TaskServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT
TTL_MS = 400


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A short liveness TTL and a fast background recovery, so deaths are noticed within a second.
    return dataclasses.replace(
        settings, instance_ttl_ms=TTL_MS, heartbeat_interval_ms=100, recovery_interval_s=0.1
    )


async def test_a_dead_workers_tasks_come_back_and_go_to_another(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    ids = await create(tasks, 3)
    await system.Register(pb.RegisterRequest(instance_id="dies", roles=["claimer"]))
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="dies", max_tasks=3))
    # "dies" never heartbeats again; the background recovery notices after the TTL.

    async def recovered() -> bool:
        return await pending_ids(tasks) == set(ids)

    await eventually(recovered)
    taken = await system.Register(pb.RegisterRequest(instance_id="lives", roles=["worker"]))
    assert {t.id for t in taken.assigned_tasks} == set(ids)
    assert "call Register again" in await rpc_error(
        system.Heartbeat(pb.HeartbeatRequest(instance_id="dies")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "not held by dies" in await rpc_error(
        tasks.CompleteTask(
            tasks_pb2.CompleteTaskRequest(
                task_id=ids[0], worker_id="dies", result=struct_pb2.Value(bool_value=True)
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await assert_consistent(redis_client, keys)


async def test_two_replicas_recover_each_task_exactly_once(
    settings: Settings, server: ClaudebenchServer, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    assert settings.redis_url is not None
    second = ClaudebenchServer(settings, settings.redis_url)
    await second.start()
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as one,
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as two,
        ):
            tasks, system = tasks_pb2_grpc.TaskServiceStub(one), system_pb2_grpc.SystemServiceStub(two)
            ids = await create(tasks, 40)
            for n in range(4):
                await system.Register(pb.RegisterRequest(instance_id=f"d{n}", max_tasks=10))
                await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id=f"d{n}", max_tasks=10))
            # Both replicas run background recovery, and clients call CheckHealth on both, at once.
            await asyncio.sleep(TTL_MS / 1000)
            await asyncio.gather(
                *(
                    stub.CheckHealth(pb.CheckHealthRequest())
                    for stub in (system, system_pb2_grpc.SystemServiceStub(one))
                    for _ in range(3)
                )
            )

            async def recovered() -> bool:
                return await pending_ids(tasks) == set(ids)

            await eventually(recovered)
    finally:
        await second.stop(grace_s=0)
    reassigned = Counter(
        e["task_id"] for e in await stream_events(redis_client, keys) if e["type"] == "reassigned"
    )
    assert reassigned == Counter({task_id: 1 for task_id in ids})
    failed_events = [
        f for _, f in await entries(redis_client, keys.system_events) if f["type"] == "instance.failed"
    ]
    assert len(failed_events) == 4
    await assert_consistent(redis_client, keys)


async def test_leader_is_replaced_when_it_goes_quiet(system: System) -> None:
    first = await system.Register(pb.RegisterRequest(instance_id="leader"))
    second = await system.Register(pb.RegisterRequest(instance_id="follower"))
    assert (first.became_leader, second.became_leader) == (True, False)

    async def follower_leads() -> bool:
        beat: pb.HeartbeatResponse = await system.Heartbeat(pb.HeartbeatRequest(instance_id="follower"))
        return beat.is_leader

    await eventually(follower_leads)
