"""Push dispatch with named queues, against a real server and Redis: a stream takes only its
queues; pause/resume, concurrency caps and rate limits hold back and then release waiting workers
(streams and long polls) without a new task event."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import queues_pb2 as qpb
from claudebench.v1 import queues_pb2_grpc, system_pb2, tasks_pb2
from tests.api.helpers import rpc_error
from tests.api.work_helpers import Stream, System, Tasks, idle_waiters

Queues = queues_pb2_grpc.QueueServiceStub
DONE = struct_pb2.Value(string_value="done")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No periodic job (recovery, scheduler) claims or wakes anyone behind the test's back.
    return dataclasses.replace(
        settings, metrics_flush_interval_s=3600, recovery_interval_s=3600, scheduler_interval_s=3600
    )


@pytest.fixture
def queues(channel: grpc.aio.Channel) -> Queues:
    return queues_pb2_grpc.QueueServiceStub(channel)


async def create_in(tasks: Tasks, queue: str, text: str = "t") -> str:
    created = await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=text, queue=queue))
    return str(created.task.id)


async def test_a_stream_takes_only_its_queues(
    server: ClaudebenchServer, tasks: Tasks, system: System
) -> None:
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"], queues=["a", "b"]))
    stream = Stream(tasks, "w1")
    await stream.hello(capacity=5, queues=("a",))
    await idle_waiters(server, 1, "a")
    assert server.dispatcher is not None
    assert server.dispatcher.idle_count("b") == 0
    b_task = await create_in(tasks, "b")
    await asyncio.sleep(0.3)
    assert not stream.pushed
    a_task = await create_in(tasks, "a")
    await stream.wait_for(1)
    await asyncio.sleep(0.2)
    assert [t.id for t in stream.pushed] == [a_task]
    # An empty hello.queues serves every registered queue: the waiting task of b arrives.
    other = await Stream.open(tasks, system, "w2", capacity=5, queues=("b", "c"))
    await other.wait_for(1)
    assert [t.id for t in other.pushed] == [b_task]
    await idle_waiters(server, 1, "c")
    stream.cancel()
    other.cancel()


async def test_a_queue_not_registered_is_refused_as_claim_task_refuses_it(
    tasks: Tasks, system: System
) -> None:
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"], queues=["a"]))
    claim = tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", queues=["c"]))
    unary = await rpc_error(claim, grpc.StatusCode.FAILED_PRECONDITION)
    poll = tasks.ClaimTask(
        tasks_pb2.ClaimTaskRequest(worker_id="w1", queues=["c"], wait=duration_pb2.Duration(seconds=5))
    )
    assert await rpc_error(poll, grpc.StatusCode.FAILED_PRECONDITION) == unary
    stream = tasks.Work()
    await stream.write(tasks_pb2.WorkRequest(hello=tasks_pb2.WorkHello(worker_id="w1", queues=["a", "c"])))
    assert await stream.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await stream.details() == unary
    assert "not registered for queue c" in unary


async def test_a_paused_queue_pushes_nothing_and_resuming_it_wakes_the_stream(
    server: ClaudebenchServer, tasks: Tasks, system: System, queues: Queues
) -> None:
    stream = await Stream.open(tasks, system, "w1", capacity=2, queues=("p",))  # creates queue p
    await idle_waiters(server, 1, "p")
    await queues.PauseQueue(qpb.PauseQueueRequest(queue="p"))
    task_id = await create_in(tasks, "p")
    await asyncio.sleep(0.3)
    assert not stream.pushed  # woken by the creation, its claim took nothing: paused
    await idle_waiters(server, 1, "p")
    await queues.ResumeQueue(qpb.ResumeQueueRequest(queue="p"))  # no task event: the resume wakes it
    await stream.wait_for(1)
    assert [t.id for t in stream.pushed] == [task_id]
    stream.cancel()


async def test_a_rate_limited_task_reaches_a_waiting_long_poll_when_the_window_reopens(
    tasks: Tasks, system: System, queues: Queues
) -> None:
    window = duration_pb2.Duration(nanos=600_000_000)
    await queues.ConfigureQueue(qpb.ConfigureQueueRequest(queue="api", rate_limit=1, rate_window=window))
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"], queues=["api"]))
    ids = [await create_in(tasks, "api", f"t{i}") for i in range(2)]
    first = await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1"))
    assert [t.id for t in first.tasks] == ids[:1]
    loop = asyncio.get_running_loop()
    started = loop.time()
    # The window is closed, and no event will come: the long poll retries when it reopens.
    wait = duration_pb2.Duration(seconds=20)
    reply = await asyncio.wait_for(tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=wait)), 5)
    assert [t.id for t in reply.tasks] == ids[1:]
    assert loop.time() - started >= 0.3  # it did wait for the window
    # A long poll that ends before the window reopens answers when it will.
    await create_in(tasks, "api")
    short = duration_pb2.Duration(nanos=100_000_000)
    empty = await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=short))
    assert not empty.tasks
    assert empty.HasField("rate_limit_reset_time")


async def test_a_freed_concurrency_place_wakes_the_next_stream(
    server: ClaudebenchServer, tasks: Tasks, system: System, queues: Queues
) -> None:
    await queues.ConfigureQueue(qpb.ConfigureQueueRequest(queue="cap", concurrency_limit=1))
    first = await Stream.open(tasks, system, "w1", capacity=1, queues=("cap",))
    ids = [await create_in(tasks, "cap", f"t{i}") for i in range(2)]
    await first.wait_for(1)
    second = await Stream.open(tasks, system, "w2", capacity=1, queues=("cap",))
    await idle_waiters(server, 1, "cap")
    await asyncio.sleep(0.3)
    assert not second.pushed  # the queue's one place is taken
    # The first worker's stream breaks (its task stays held), then it completes the task through
    # the unary RPC: only the freed place can wake the second stream (no task became claimable).
    first.cancel()
    await tasks.CompleteTask(tasks_pb2.CompleteTaskRequest(task_id=ids[0], worker_id="w1", result=DONE))
    await second.wait_for(1)
    assert [t.id for t in second.pushed] == ids[1:]
    second.cancel()


async def test_a_rate_limited_stream_claims_again_when_the_window_reopens(
    tasks: Tasks, system: System, queues: Queues
) -> None:
    window = duration_pb2.Duration(nanos=600_000_000)
    await queues.ConfigureQueue(qpb.ConfigureQueueRequest(queue="api", rate_limit=1, rate_window=window))
    ids = [await create_in(tasks, "api", f"t{i}") for i in range(2)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    stream = await Stream.open(tasks, system, "w1", capacity=3, queues=("api",))
    await stream.wait_for(1)
    await stream.wait_for(2, seconds=5)  # no event: the stream's own retry at the reset time
    assert [t.id for t in stream.pushed] == ids
    assert loop.time() - started >= 0.3
    stream.cancel()
