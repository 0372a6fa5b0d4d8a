"""CancelTask, RetryTask, ReportProgress, retry policies and no_retry through real stubs; the
Python Worker cancels the handler of a task cancelled while it runs."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, struct_pb2

from claudebench.client import AsyncClient, Worker
from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2 as sys_pb
from claudebench.v1 import system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import eventually, rpc_error
from tests.api.work_helpers import Stream
from tests.invariants import assert_consistent, stream_events

Tasks = tasks_pb2_grpc.TaskServiceStub
System = system_pb2_grpc.SystemServiceStub
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, heartbeat_interval_ms=100, scheduler_interval_s=0.05)


async def held(tasks: Tasks, system: System, worker: str, **fields: Any) -> pb.Task:
    created = (await tasks.CreateTask(pb.CreateTaskRequest(text="x", **fields))).task
    await system.Register(sys_pb.RegisterRequest(instance_id=worker, roles=["claimer"]))
    (task,) = (await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id=worker))).tasks
    assert task.id == created.id
    result: pb.Task = task
    return result


async def test_cancel_a_running_task_then_retry_it(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    task = await held(tasks, system, "w1")
    progress = struct_pb2.Struct()
    progress.update({"pct": 40, "step": "fetch"})
    reported = await tasks.ReportProgress(
        pb.ReportProgressRequest(task_id=task.id, worker_id="w1", progress=progress)
    )
    assert not reported.cancelled
    assert reported.task.progress["pct"] == 40

    cancelled = (await tasks.CancelTask(pb.CancelTaskRequest(task_id=task.id, reason="obsolete"))).task
    assert (cancelled.status, cancelled.assigned_to) == (pb.TASK_STATUS_CANCELLED, "")
    (event,) = [e for e in await stream_events(redis_client, keys) if e["type"] == "cancelled"]
    assert event["instance_id"] == "w1"
    told = await tasks.ReportProgress(pb.ReportProgressRequest(task_id=task.id, worker_id="w1"))
    assert told.cancelled
    late = pb.CompleteTaskRequest(task_id=task.id, worker_id="w1", result=struct_pb2.Value(bool_value=True))
    assert "was cancelled" in await rpc_error(tasks.CompleteTask(late), PRECONDITION)
    again = await rpc_error(tasks.CancelTask(pb.CancelTaskRequest(task_id=task.id)), PRECONDITION)
    assert "is cancelled" in again
    assert "does not exist" in await rpc_error(
        tasks.CancelTask(pb.CancelTaskRequest(task_id="nope")), grpc.StatusCode.NOT_FOUND
    )

    retried = (await tasks.RetryTask(pb.RetryTaskRequest(task_id=task.id, reset_attempts=True))).task
    assert (retried.status, retried.attempts) == (pb.TASK_STATUS_PENDING, 0)
    assert "is pending" in await rpc_error(
        tasks.RetryTask(pb.RetryTaskRequest(task_id=task.id)), PRECONDITION
    )
    await assert_consistent(redis_client, keys)


async def test_a_retry_policy_retries_and_no_retry_fails(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    policy = pb.RetryPolicy(
        max_attempts=2, initial_backoff=duration_pb2.Duration(nanos=100_000_000), jitter=0
    )
    task = await held(tasks, system, "w1", retry=policy)
    assert task.max_attempts == 2
    failed = pb.CompleteTaskRequest(task_id=task.id, worker_id="w1", error="flaky")
    scheduled = (await tasks.CompleteTask(failed)).task
    assert scheduled.status == pb.TASK_STATUS_SCHEDULED
    assert scheduled.run_at.ToMilliseconds() == scheduled.update_time.ToMilliseconds() + 100

    async def claimed_again() -> bool:
        got = await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1"))
        return [t.id for t in got.tasks] == [task.id]

    await eventually(claimed_again)
    final = pb.CompleteTaskRequest(task_id=task.id, worker_id="w1", error="fatal", no_retry=True)
    assert (await tasks.CompleteTask(final)).task.status == pb.TASK_STATUS_FAILED
    dead = await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_FAILED))
    assert [t.id for t in dead.tasks] == [task.id]
    await assert_consistent(redis_client, keys)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (pb.RetryPolicy(max_attempts=101), "retry.max_attempts must be 1..100"),
        (pb.RetryPolicy(max_attempts=-1), "retry.max_attempts must be 1..100"),
        (
            pb.RetryPolicy(max_attempts=3, backoff_multiplier=0.5),
            "retry.backoff_multiplier must be at least 1",
        ),
        (pb.RetryPolicy(max_attempts=3, jitter=1.5), "retry.jitter must be within 0..1"),
        (pb.RetryPolicy(max_attempts=3, jitter=-0.1), "retry.jitter must be within 0..1"),
        (
            pb.RetryPolicy(max_attempts=3, initial_backoff=duration_pb2.Duration(seconds=0)),
            "retry.initial_backoff must be positive",
        ),
        (
            pb.RetryPolicy(
                max_attempts=3,
                initial_backoff=duration_pb2.Duration(seconds=10),
                max_backoff=duration_pb2.Duration(seconds=5),
            ),
            "retry.max_backoff (5000 ms) must not be shorter than retry.initial_backoff (10000 ms)",
        ),
    ],
)
async def test_bad_retry_policies_are_refused(tasks: Tasks, policy: pb.RetryPolicy, message: str) -> None:
    details = await rpc_error(tasks.CreateTask(pb.CreateTaskRequest(text="x", retry=policy)), INVALID)
    assert details.startswith(message), details
    assert not (await tasks.ListTasks(pb.ListTasksRequest())).tasks


async def test_progress_refusals(tasks: Tasks, system: System) -> None:
    task = await held(tasks, system, "w1")
    other = pb.ReportProgressRequest(task_id=task.id, worker_id="w2")
    assert "not held by w2" in await rpc_error(tasks.ReportProgress(other), PRECONDITION)
    zero = pb.ReportProgressRequest(task_id=task.id, worker_id="w1", extend=duration_pb2.Duration())
    assert "extend must be positive" in await rpc_error(tasks.ReportProgress(zero), INVALID)


@pytest.mark.parametrize("stream", [True, False], ids=["work-stream", "long-poll"])
async def test_the_worker_cancels_the_handler_of_a_cancelled_task(
    server: ClaudebenchServer, stream: bool
) -> None:
    started = asyncio.Event()

    async def handler(task: pb.Task) -> object:
        started.set()
        await asyncio.sleep(60)
        return None

    async with AsyncClient(f"127.0.0.1:{server.port}") as client:
        task = await client.create_task("long")
        # On the stream the server sends a cancel message; long-polling, the heartbeat looks it up.
        worker = Worker(client, "py-worker", handler, capacity=1, stream=stream)
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(started.wait(), 5)
        await client.cancel(task.id, "no longer needed")

        async def handler_cancelled() -> bool:
            return worker.cancelled == 1

        await eventually(handler_cancelled)
        worker.stop()
        await asyncio.wait_for(running, 10)
        assert (worker.completed, worker.failed) == (0, 0)
        assert (await client.get_task(task.id)).status == pb.TASK_STATUS_CANCELLED


async def test_a_delayed_task_reaches_an_idle_streaming_worker_when_due(tasks: Tasks, system: System) -> None:
    stream = await Stream.open(tasks, system, "streamer", capacity=1)
    delay = duration_pb2.Duration(nanos=300_000_000)
    created = (await tasks.CreateTask(pb.CreateTaskRequest(text="later", delay=delay))).task
    assert created.status == pb.TASK_STATUS_SCHEDULED
    # The promotion's UPDATED event (PENDING) wakes the idle stream, which claims it.
    await stream.wait_for(1)
    assert stream.pushed[0].id == created.id
    stream.cancel()
