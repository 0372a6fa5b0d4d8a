"""Limits enforced by the server itself: message size and WatchTasks streams per process."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest

from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2 as pb
from claudebench.v1 import tasks_pb2_grpc
from tests.api.helpers import rpc_error, subscribed

Tasks = tasks_pb2_grpc.TaskServiceStub


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, max_watch_subscribers=2, max_message_bytes=64 * 1024)


async def test_a_message_over_the_size_limit_is_refused(tasks: Tasks) -> None:
    big = pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text="x" * 500) for _ in range(200)])
    assert big.ByteSize() > 64 * 1024
    details = await rpc_error(tasks.CreateTasks(big), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "larger than max" in details
    small = pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text="x" * 500) for _ in range(20)])
    assert len((await tasks.CreateTasks(small)).tasks) == 20


async def test_watch_streams_beyond_the_limit_are_refused_until_one_ends(
    server: ClaudebenchServer, tasks: Tasks
) -> None:
    first, second = tasks.WatchTasks(pb.WatchTasksRequest()), tasks.WatchTasks(pb.WatchTasksRequest())
    await subscribed(server, 2)
    third = tasks.WatchTasks(pb.WatchTasksRequest())
    details = await rpc_error(third.read(), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "max_watch_subscribers" in details
    first.cancel()
    await subscribed(server, 1)
    fourth = tasks.WatchTasks(pb.WatchTasksRequest())
    await subscribed(server, 2)
    created = (await tasks.CreateTask(pb.CreateTaskRequest(text="seen"))).task.id
    assert (await asyncio.wait_for(fourth.read(), 10)).event.task_id == created
    second.cancel()
    fourth.cancel()
