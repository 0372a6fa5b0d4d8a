"""Delayed tasks through real stubs: CreateTask with delay/run_at answers SCHEDULED with its run_at,
the server's scheduler promotes it when due, and bad start times are refused with nothing written."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, timestamp_pb2

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.store.clock import wall_clock_ms
from claudebench.v1 import tasks_pb2 as pb
from claudebench.v1 import tasks_pb2_grpc
from tests.api.helpers import eventually, rpc_error
from tests.invariants import assert_consistent, stream_events

Tasks = tasks_pb2_grpc.TaskServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT
YEAR_S = 365 * 24 * 3600


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, scheduler_interval_s=0.05)


async def test_a_delayed_task_is_scheduled_then_promoted_by_the_scheduler(
    tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    before = wall_clock_ms()
    created = await tasks.CreateTask(
        pb.CreateTaskRequest(text="later", delay=duration_pb2.Duration(nanos=300_000_000))
    )
    task = created.task
    assert task.status == pb.TASK_STATUS_SCHEDULED
    assert before + 300 <= task.run_at.ToMilliseconds() <= wall_clock_ms() + 300
    listed = await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_SCHEDULED))
    assert [t.id for t in listed.tasks] == [task.id]

    async def pending() -> bool:
        got = await tasks.GetTask(pb.GetTaskRequest(task_id=task.id))
        return bool(got.task.status == pb.TASK_STATUS_PENDING)

    await eventually(pending)
    got = (await tasks.GetTask(pb.GetTaskRequest(task_id=task.id))).task
    assert not got.HasField("run_at")
    assert wall_clock_ms() >= task.run_at.ToMilliseconds()
    assert [e["type"] for e in await stream_events(redis_client, keys)] == ["scheduled", "updated"]
    await assert_consistent(redis_client, keys)


async def test_a_run_at_in_the_past_is_pending_at_once(tasks: Tasks) -> None:
    created = await tasks.CreateTask(
        pb.CreateTaskRequest(text="now", run_at=timestamp_pb2.Timestamp(seconds=1_000_000_000))
    )
    assert created.task.status == pb.TASK_STATUS_PENDING


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"delay": duration_pb2.Duration(seconds=0)}, "delay must be positive (at least 1 ms), not 0 ms"),
        (
            {"delay": duration_pb2.Duration(seconds=-5)},
            "delay must be positive (at least 1 ms), not -5000 ms",
        ),
        ({"delay": duration_pb2.Duration(seconds=YEAR_S + 1)}, "delay is 31536001000 ms; the limit is"),
        ({"delay": duration_pb2.Duration(seconds=1, nanos=-1)}, "delay is not a valid Duration"),
        (
            {"run_at": timestamp_pb2.Timestamp(seconds=wall_clock_ms() // 1000 + YEAR_S + 60)},
            "run_at is more than a year ahead",
        ),
        ({"run_at": timestamp_pb2.Timestamp(seconds=1, nanos=-1)}, "run_at is not a valid Timestamp"),
        ({"run_at": timestamp_pb2.Timestamp(seconds=10**12)}, "run_at is not a valid Timestamp"),
    ],
)
async def test_bad_start_times_are_refused_with_nothing_written(
    tasks: Tasks, fields: dict[str, Any], message: str
) -> None:
    details = await rpc_error(tasks.CreateTask(pb.CreateTaskRequest(text="x", **fields)), INVALID)
    assert details.startswith(message), details
    assert not (await tasks.ListTasks(pb.ListTasksRequest())).tasks


async def test_create_tasks_honours_the_lifecycle_fields(
    tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    batch = pb.CreateTasksRequest(
        tasks=[
            pb.CreateTaskRequest(text="a"),
            pb.CreateTaskRequest(
                text="b",
                delay=duration_pb2.Duration(seconds=60),
                timeout=duration_pb2.Duration(seconds=5),
                retry=pb.RetryPolicy(max_attempts=4),
            ),
        ]
    )
    now, later = (await tasks.CreateTasks(batch)).tasks
    assert now.status == pb.TASK_STATUS_PENDING
    assert (later.status, later.timeout.ToSeconds(), later.max_attempts) == (pb.TASK_STATUS_SCHEDULED, 5, 4)
    assert await redis_client.zrange(keys.due, 0, -1) == [later.id]
    await assert_consistent(redis_client, keys)
    keyed = pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text="c", idempotency_key="k")])
    details = await rpc_error(tasks.CreateTasks(keyed), INVALID)
    assert details.startswith("tasks[0].idempotency_key in CreateTasks is not supported yet")


async def test_update_cannot_make_a_task_scheduled_and_can_run_it_now(
    tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    task = (
        await tasks.CreateTask(pb.CreateTaskRequest(text="x", delay=duration_pb2.Duration(seconds=3600)))
    ).task
    refused = pb.UpdateTaskRequest(task_id=task.id, status=pb.TASK_STATUS_CANCELLED)
    assert "only CancelTask can make a task cancelled" in await rpc_error(
        tasks.UpdateTask(refused), grpc.StatusCode.FAILED_PRECONDITION
    )
    now = await tasks.UpdateTask(pb.UpdateTaskRequest(task_id=task.id, status=pb.TASK_STATUS_PENDING))
    assert now.task.status == pb.TASK_STATUS_PENDING
    await assert_consistent(redis_client, keys)
    later = (
        await tasks.CreateTask(pb.CreateTaskRequest(text="y", delay=duration_pb2.Duration(seconds=3600)))
    ).task
    await tasks.DeleteTask(pb.DeleteTaskRequest(task_id=later.id))
    assert await redis_client.zcard(keys.due) == 0
    await assert_consistent(redis_client, keys)
