"""Push dispatch and long polls over named queues (dispatch merged with queues): a waiter listens to
the queues it claims from (named, else the worker's registered ones), and a queue that holds tasks
it could not take (paused, at its concurrency cap) is claimed from again without a task event."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest
from google.protobuf import duration_pb2

from claudebench.config import Settings
from claudebench.v1 import queues_pb2 as qpb
from claudebench.v1 import queues_pb2_grpc, system_pb2, tasks_pb2
from tests.api.work_helpers import Stream, System, Tasks

WAIT = duration_pb2.Duration(seconds=10)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, recovery_interval_s=3600, scheduler_interval_s=3600)


@pytest.fixture
def queues(channel: grpc.aio.Channel) -> queues_pb2_grpc.QueueServiceStub:
    return queues_pb2_grpc.QueueServiceStub(channel)


async def create_in(tasks: Tasks, queue: str) -> str:
    created = await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="job", queue=queue))
    return str(created.task.id)


async def test_long_poll_on_the_registered_queues_is_woken_by_a_task_of_one_of_them(
    tasks: Tasks, system: System
) -> None:
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"], queues=["gpu"]))
    poll = asyncio.ensure_future(tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=WAIT)))
    await asyncio.sleep(0.3)
    await create_in(tasks, "default")  # not its queue: no wake-up, nothing taken
    await asyncio.sleep(0.3)
    assert not poll.done()
    task_id = await create_in(tasks, "gpu")
    reply = await asyncio.wait_for(poll, 5)
    assert [(t.id, t.queue) for t in reply.tasks] == [(task_id, "gpu")]


async def test_long_poll_on_a_paused_queue_takes_its_task_once_resumed(
    tasks: Tasks, system: System, queues: queues_pb2_grpc.QueueServiceStub
) -> None:
    """ResumeQueue appends no task event: the waiter claims again because its queue held tasks."""
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"], queues=["gpu"]))
    await queues.PauseQueue(qpb.PauseQueueRequest(queue="gpu"))
    task_id = await create_in(tasks, "gpu")
    poll = asyncio.ensure_future(tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", wait=WAIT)))
    await asyncio.sleep(0.3)
    assert not poll.done()
    await queues.ResumeQueue(qpb.ResumeQueueRequest(queue="gpu"))
    reply = await asyncio.wait_for(poll, 5)
    assert [t.id for t in reply.tasks] == [task_id]


async def test_work_stream_pushes_its_named_queues_only_and_honours_the_concurrency_cap(
    tasks: Tasks, system: System, queues: queues_pb2_grpc.QueueServiceStub
) -> None:
    await queues.ConfigureQueue(qpb.ConfigureQueueRequest(queue="gpu", concurrency_limit=1))
    await system.Register(
        system_pb2.RegisterRequest(instance_id="w1", roles=["worker"], max_tasks=5, queues=["gpu", "cpu"])
    )
    stream = Stream(tasks, "w1")
    await stream.call.write(
        tasks_pb2.WorkRequest(hello=tasks_pb2.WorkHello(worker_id="w1", queues=["gpu"], capacity=5))
    )
    assert (await stream.call.read()).WhichOneof("kind") == "ack"
    stream._reader = asyncio.create_task(stream._read())
    try:
        await create_in(tasks, "cpu")  # registered, but not named in the hello
        first, second = await create_in(tasks, "gpu"), await create_in(tasks, "gpu")
        await stream.wait_for(1)
        await asyncio.sleep(0.3)
        assert [t.id for t in stream.pushed] == [first]  # the cap: one gpu task at a time
        await stream.complete(first)
        await stream.wait_for(2)  # a completion frees the cap: pushed without a new task event
        assert [t.id for t in stream.pushed] == [first, second]
    finally:
        stream.cancel()
