"""CreateTask idempotency keys through real stubs and concurrent clients: one task per key, the
key on the task, bad keys refused."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio

from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2 as pb
from claudebench.v1 import tasks_pb2_grpc
from tests.api.helpers import close_channel, rpc_error


async def test_twenty_concurrent_clients_with_one_key_get_one_task(server: ClaudebenchServer) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(5)]
    try:
        stubs = [tasks_pb2_grpc.TaskServiceStub(c) for c in channels]
        replies = await asyncio.gather(
            *(
                stubs[i % 5].CreateTask(pb.CreateTaskRequest(text=f"try {i}", idempotency_key="pay-42"))
                for i in range(20)
            )
        )
        assert len({r.task.id for r in replies}) == 1
        assert {r.task.idempotency_key for r in replies} == {"pay-42"}
        listed = await stubs[0].ListTasks(pb.ListTasksRequest())
        assert [t.id for t in listed.tasks] == [replies[0].task.id]
    finally:
        for channel in channels:
            await close_channel(channel)


async def test_bad_idempotency_keys_are_refused(server: ClaudebenchServer) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        for key, size in (("x" * 201, 201), ("", 0), ("é" * 101, 202)):
            details = await rpc_error(
                tasks.CreateTask(pb.CreateTaskRequest(text="x", idempotency_key=key)),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            assert details.startswith(f"idempotency_key must be 1..200 bytes, not {size}")
        assert not (await tasks.ListTasks(pb.ListTasksRequest())).tasks
    finally:
        await close_channel(channel)
