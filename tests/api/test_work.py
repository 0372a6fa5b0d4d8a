"""The Work stream (push dispatch) and ClaimTask's long poll against a real server and Redis:
pushes up to capacity, acks with the unary RPC's answer, targeted wake-ups, cross-replica wake-ups,
broken streams, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, struct_pb2

from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import create, rpc_error, serving, until
from tests.api.work_helpers import Stream, System, Tasks, idle_waiters

FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Script call counts stay in process for the whole test (read by the wake-up tests), and the
    # periodic jobs of the process (recovery, scheduler) stay quiet while Redis commands are counted.
    return dataclasses.replace(
        settings, metrics_flush_interval_s=3600, recovery_interval_s=3600, scheduler_interval_s=3600
    )


async def test_pushes_up_to_capacity_and_acks_completions(tasks: Tasks, system: System) -> None:
    stream = await Stream.open(tasks, system, "w1", capacity=2, max_tasks=5)
    ids = await create(tasks, 3)
    await stream.wait_for(2)
    await asyncio.sleep(0.2)
    assert len(stream.pushed) == 2  # capacity 2, though 3 are pending and max_tasks is 5
    first = stream.pushed[0]
    assert first.id == ids[0]
    assert first.status == tasks_pb2.TASK_STATUS_IN_PROGRESS
    ack = await stream.complete(first.id, "done")
    assert ack.code == 0
    assert ack.task_id == first.id
    assert ack.task.status == tasks_pb2.TASK_STATUS_COMPLETED
    assert ack.task.result.string_value == "done"
    await stream.wait_for(3)  # room again: the third task
    assert [t.id for t in stream.pushed] == ids
    stream.cancel()


async def test_an_ack_carries_the_status_the_unary_rpc_gives(tasks: Tasks, system: System) -> None:
    [task_id] = await create(tasks, 1)
    await system.Register(system_pb2.RegisterRequest(instance_id="other", roles=["worker"]))
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="other"))
    stream = await Stream.open(tasks, system, "w1")
    unary = await rpc_error(
        tasks.CompleteTask(
            tasks_pb2.CompleteTaskRequest(
                task_id=task_id, worker_id="w1", result=struct_pb2.Value(string_value="x")
            )
        ),
        FAILED_PRECONDITION,
    )
    ack = await stream.complete(task_id, "x")
    assert (ack.code, ack.message, ack.task_id) == (FAILED_PRECONDITION.value[0], unary, task_id)
    assert not ack.HasField("task")
    progress = tasks_pb2.ReportProgressRequest(task_id=task_id)
    await stream.call.write(tasks_pb2.WorkRequest(progress=progress))
    ack = await asyncio.wait_for(stream.acks.get(), 5)
    assert ack.code == FAILED_PRECONDITION.value[0]  # held by "other", as ReportProgress says
    stream.cancel()


async def test_hello_checks(tasks: Tasks, system: System) -> None:
    call = tasks.Work()
    await call.write(tasks_pb2.WorkRequest(hello=tasks_pb2.WorkHello(worker_id="nobody")))
    assert await call.code() == FAILED_PRECONDITION
    assert "not registered" in await call.details()
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"]))
    call = tasks.Work()
    await call.write(tasks_pb2.WorkRequest(release=tasks_pb2.ReleaseTaskRequest(task_id="t")))
    assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
    call = tasks.Work()
    hello = tasks_pb2.WorkHello(worker_id="w1", capacity=-1)
    await call.write(tasks_pb2.WorkRequest(hello=hello))
    assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_new_task_wakes_one_idle_worker_the_longest_idle(
    server: ClaudebenchServer, tasks: Tasks, system: System
) -> None:
    streams = []
    for i in range(10):
        streams.append(await Stream.open(tasks, system, f"w{i}", capacity=1))
        await idle_waiters(server, i + 1)
    # Each stream claimed once at its start (armed before that claim returns): wait for the last.
    await until(lambda: server.executor.stats.calls("TASK_CLAIM") == 10)
    claims_before = server.executor.stats.calls("TASK_CLAIM")
    [_task_id] = await create(tasks, 1)
    await streams[0].wait_for(1)  # the longest idle
    await asyncio.sleep(0.3)
    assert [len(s.pushed) for s in streams] == [1] + [0] * 9
    assert server.executor.stats.calls("TASK_CLAIM") - claims_before == 1  # no herd of claims
    # Three tasks at once wake exactly three more.
    await tasks.CreateTasks(
        tasks_pb2.CreateTasksRequest(tasks=[tasks_pb2.CreateTaskRequest(text=f"b{i}") for i in range(3)])
    )
    for stream in streams[1:4]:
        await stream.wait_for(1)
    await asyncio.sleep(0.3)
    assert [len(s.pushed) for s in streams] == [1, 1, 1, 1] + [0] * 6
    assert server.executor.stats.calls("TASK_CLAIM") - claims_before == 4
    for stream in streams:
        stream.cancel()


async def test_a_task_created_through_one_replica_reaches_a_worker_on_another(
    settings: Settings, tasks: Tasks, system: System
) -> None:
    async with serving(settings) as (_, other):
        remote = await Stream.open(tasks_pb2_grpc.TaskServiceStub(other), system, "far", capacity=1)
        [task_id] = await create(tasks, 1)
        await remote.wait_for(1)
        assert remote.pushed[0].id == task_id
        remote.cancel()


async def test_long_poll_returns_on_create_on_wait_and_before_the_deadline(
    tasks: Tasks, system: System
) -> None:
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"]))
    wait = duration_pb2.Duration(seconds=20)
    poll = asyncio.ensure_future(tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=wait)))
    await asyncio.sleep(0.3)
    assert not poll.done()
    [task_id] = await create(tasks, 1)
    reply = await asyncio.wait_for(poll, 5)
    assert [t.id for t in reply.tasks] == [task_id]
    short = duration_pb2.Duration(nanos=300_000_000)
    started = asyncio.get_running_loop().time()
    reply = await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=short))
    assert not reply.tasks
    assert asyncio.get_running_loop().time() - started >= 0.29
    # A deadline shorter than the wait: an empty answer before it, not DEADLINE_EXCEEDED.
    reply = await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=wait), timeout=0.5)
    assert not reply.tasks
    too_long = duration_pb2.Duration(seconds=31)
    await rpc_error(
        tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=too_long)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_shutdown_answers_long_polls_and_streams_unavailable(settings: Settings) -> None:
    async with serving(settings) as (app, channel):
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        stream = await Stream.open(tasks, system, "s1")
        await system.Register(system_pb2.RegisterRequest(instance_id="p1", roles=["worker"]))
        wait = duration_pb2.Duration(seconds=20)
        poll = asyncio.ensure_future(tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="p1", wait=wait)))
        await idle_waiters(app, 2)
        await app.stop(grace_s=1)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await poll
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await stream.status() == grpc.StatusCode.UNAVAILABLE


async def test_a_broken_stream_leaves_its_tasks_held_and_a_new_stream_gets_them_again(
    tasks: Tasks, system: System
) -> None:
    stream = await Stream.open(tasks, system, "w1", capacity=2)
    ids = await create(tasks, 2)
    await stream.wait_for(2)
    stream.cancel()
    await asyncio.sleep(0.2)
    for task_id in ids:
        task = (await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))).task
        assert task.status == tasks_pb2.TASK_STATUS_IN_PROGRESS
        assert task.assigned_to == "w1"
    again = Stream(tasks, "w1")
    await again.hello()
    await again.wait_for(2)
    assert sorted(t.id for t in again.pushed) == sorted(ids)
    for task_id in ids:
        assert (await again.complete(task_id)).code == 0
    again.cancel()


async def test_idle_streams_cost_redis_nothing(
    server: ClaudebenchServer, tasks: Tasks, system: System, redis_client: aioredis.Redis
) -> None:
    streams = [await Stream.open(tasks, system, f"idle{i}", capacity=2) for i in range(20)]
    await idle_waiters(server, 20)
    await until(lambda: server.executor.stats.calls("TASK_CLAIM") == 20)
    before = await _command_counts(redis_client)
    await asyncio.sleep(1.5)
    after = await _command_counts(redis_client)
    grown = {name for name, calls in after.items() if calls > before.get(name, 0)}
    # The one event reader (a blocking XREAD), the health ping, this test's INFO: nothing per worker.
    assert grown <= {"cmdstat_xread", "cmdstat_ping", "cmdstat_info"}, grown
    assert server.executor.stats.calls("TASK_CLAIM") == 20
    for stream in streams:
        stream.cancel()


async def _command_counts(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


async def test_a_cancelled_task_is_announced_to_its_holder_and_frees_its_place(
    tasks: Tasks, system: System
) -> None:
    stream = await Stream.open(tasks, system, "w1", capacity=1)
    first, second = await create(tasks, 2)
    await stream.wait_for(1)
    assert stream.pushed[0].id == first
    await tasks.CancelTask(tasks_pb2.CancelTaskRequest(task_id=first, reason="not needed"))
    await stream.wait_for(2)  # its place is free: the next task comes
    assert [(c.task_id, c.reason) for c in stream.cancels] == [(first, "not needed")]
    assert stream.pushed[1].id == second
    stream.cancel()


async def test_progress_over_the_stream(tasks: Tasks, system: System) -> None:
    stream = await Stream.open(tasks, system, "w1")
    [task_id] = await create(tasks, 1)
    await stream.wait_for(1)
    progress = tasks_pb2.ReportProgressRequest(task_id=task_id)
    progress.progress.update({"step": 3})
    await stream.call.write(tasks_pb2.WorkRequest(progress=progress))
    ack = await asyncio.wait_for(stream.acks.get(), 5)
    assert ack.code == 0
    assert ack.task.progress["step"] == 3
    stream.cancel()


async def test_a_task_failed_by_the_unary_rpc_frees_its_place_on_the_stream(
    tasks: Tasks, system: System
) -> None:
    stream = await Stream.open(tasks, system, "w1", capacity=1)
    retry = tasks_pb2.RetryPolicy(max_attempts=3, initial_backoff=duration_pb2.Duration(seconds=60))
    first = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="retried", retry=retry))).task
    [second] = await create(tasks, 1)
    await stream.wait_for(1)
    # Failed outside the stream, with attempts left: SCHEDULED for a retry, no longer held.
    failed = await tasks.CompleteTask(
        tasks_pb2.CompleteTaskRequest(task_id=first.id, worker_id="w1", error="x")
    )
    assert failed.task.status == tasks_pb2.TASK_STATUS_SCHEDULED
    await stream.wait_for(2)
    assert stream.pushed[1].id == second
    stream.cancel()
