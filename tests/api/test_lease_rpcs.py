"""Leases through real stubs and the server's scheduler: a hung worker (heartbeating, never
completing) loses its task at the deadline, another worker gets it, the old holder's completion is
refused saying the lease expired; the server's default timeout applies to tasks without one."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, struct_pb2

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.v1 import system_pb2 as sys_pb
from claudebench.v1 import system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import eventually, rpc_error
from tests.invariants import assert_consistent, stream_events

Tasks = tasks_pb2_grpc.TaskServiceStub
System = system_pb2_grpc.SystemServiceStub


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, scheduler_interval_s=0.05, default_task_timeout_s=3600)


async def test_a_hung_worker_loses_its_task_to_another(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    timeout = duration_pb2.Duration(nanos=300_000_000)
    task = (await tasks.CreateTask(pb.CreateTaskRequest(text="hangs", timeout=timeout))).task
    assert task.timeout.ToMilliseconds() == 300
    for worker in ("hung", "healthy"):
        await system.Register(sys_pb.RegisterRequest(instance_id=worker, roles=["claimer"]))
    (held,) = (await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="hung"))).tasks
    assert held.lease_deadline.ToMilliseconds() == held.assign_time.ToMilliseconds() + 300

    async def taken_by_healthy() -> bool:
        await system.Heartbeat(sys_pb.HeartbeatRequest(instance_id="hung"))  # alive, just stuck
        claimed = await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="healthy"))
        return [t.id for t in claimed.tasks] == [task.id]

    await eventually(taken_by_healthy)
    late = pb.CompleteTaskRequest(task_id=task.id, worker_id="hung", result=struct_pb2.Value(number_value=1))
    details = await rpc_error(tasks.CompleteTask(late), grpc.StatusCode.FAILED_PRECONDITION)
    assert "its lease expired" in details
    done = pb.CompleteTaskRequest(
        task_id=task.id, worker_id="healthy", result=struct_pb2.Value(number_value=2)
    )
    assert (await tasks.CompleteTask(done)).task.status == pb.TASK_STATUS_COMPLETED
    types = [e["type"] for e in await stream_events(redis_client, keys)]
    assert types == ["created", "claimed", "timed_out", "claimed", "completed"]
    await assert_consistent(redis_client, keys)


async def test_the_server_default_timeout_applies_to_tasks_without_one(tasks: Tasks) -> None:
    task = (await tasks.CreateTask(pb.CreateTaskRequest(text="x"))).task
    assert task.timeout.ToSeconds() == 3600


@pytest.mark.parametrize(
    ("lease", "message"),
    [
        (duration_pb2.Duration(seconds=0), "timeout must be positive (at least 1 ms), not 0 ms"),
        (duration_pb2.Duration(seconds=-1), "timeout must be positive (at least 1 ms), not -1000 ms"),
    ],
)
async def test_a_bad_timeout_is_refused(tasks: Tasks, lease: duration_pb2.Duration, message: str) -> None:
    details = await rpc_error(
        tasks.CreateTask(pb.CreateTaskRequest(text="x", timeout=lease)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details.startswith(message)
    assert not (await tasks.ListTasks(pb.ListTasksRequest())).tasks
