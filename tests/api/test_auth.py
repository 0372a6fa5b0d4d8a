"""Bearer tokens with roles: UNAUTHENTICATED without one, PERMISSION_DENIED beyond the role,
health open, tokens never echoed."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from claudebench.api.auth import parse_tokens
from claudebench.config import Settings
from claudebench.v1 import queues_pb2, queues_pb2_grpc, system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import rpc_error

ADMIN, WORKER, READER = "adm-secret-1", "wrk-secret-2", "rdr-secret-3"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, auth_tokens=f"{ADMIN}:admin,{WORKER}:worker,{READER}:reader")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_roles(channel: grpc.aio.Channel) -> None:
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    system = system_pb2_grpc.SystemServiceStub(channel)

    for metadata in ((), bearer("wrong"), (("authorization", f"Basic {ADMIN}"),)):
        message = await rpc_error(
            tasks.CreateTask(pb.CreateTaskRequest(text="x"), metadata=metadata),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        assert ADMIN not in message
    created = (await tasks.CreateTask(pb.CreateTaskRequest(text="x"), metadata=bearer(WORKER))).task
    assert (
        await tasks.GetTask(pb.GetTaskRequest(task_id=created.id), metadata=bearer(READER))
    ).task == created
    assert "reader role may not call CreateTask" in await rpc_error(
        tasks.CreateTask(pb.CreateTaskRequest(text="x"), metadata=bearer(READER)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await rpc_error(
        tasks.DeleteTask(pb.DeleteTaskRequest(task_id=created.id), metadata=bearer(WORKER)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await tasks.DeleteTask(pb.DeleteTaskRequest(task_id=created.id), metadata=bearer(ADMIN))
    await system.Register(system_pb2.RegisterRequest(instance_id="w1"), metadata=bearer(WORKER))

    stream = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream.read()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    watched = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0"), metadata=bearer(READER))
    assert (await watched.read()).event.type == pb.TASK_EVENT_TYPE_CREATED
    watched.cancel()

    health: Any = health_pb2_grpc.HealthStub(channel)
    assert (
        await health.Check(health_pb2.HealthCheckRequest())
    ).status == health_pb2.HealthCheckResponse.SERVING


def test_token_specs(tmp_path: Any) -> None:
    assert parse_tokens("a:admin,b:reader") == {"a": "admin", "b": "reader"}
    path = tmp_path / "tokens"
    path.write_text("# token role\nt1 worker\n\nt2 admin\n")
    assert parse_tokens(str(path)) == {"t1": "worker", "t2": "admin"}
    with pytest.raises(SystemExit, match="ROLE one of"):
        parse_tokens("a:root")


async def test_two_authorization_headers_are_refused(channel: grpc.aio.Channel) -> None:
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    twice = (*bearer(READER), *bearer(ADMIN))
    details = await rpc_error(
        tasks.CreateTask(pb.CreateTaskRequest(text="x"), metadata=twice), grpc.StatusCode.UNAUTHENTICATED
    )
    assert "exactly one" in details


async def test_check_health_is_admin_only(channel: grpc.aio.Channel) -> None:
    """Issue 15 finding 3: declaring instances dead is an admin operation."""
    system = system_pb2_grpc.SystemServiceStub(channel)
    await rpc_error(
        system.CheckHealth(system_pb2.CheckHealthRequest(), metadata=bearer(WORKER)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await system.CheckHealth(system_pb2.CheckHealthRequest(), metadata=bearer(ADMIN))


async def test_work_is_a_worker_rpc(channel: grpc.aio.Channel) -> None:
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    system = system_pb2_grpc.SystemServiceStub(channel)
    await system.Register(system_pb2.RegisterRequest(instance_id="w1"), metadata=bearer(WORKER))
    hello = pb.WorkRequest(hello=pb.WorkHello(worker_id="w1"))
    refused = tasks.Work(metadata=bearer(READER))
    await refused.write(hello)
    assert await refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "reader role may not call Work" in await refused.details()
    accepted = tasks.Work(metadata=bearer(WORKER))
    await accepted.write(hello)
    assert (await accepted.read()).WhichOneof("kind") == "ack"
    accepted.cancel()


async def test_queue_service_roles(channel: grpc.aio.Channel) -> None:
    """Readers and workers see queues; pausing, resuming and configuring them is admin only."""
    queues = queues_pb2_grpc.QueueServiceStub(channel)
    for token in (READER, WORKER):
        listed = await queues.ListQueues(queues_pb2.ListQueuesRequest(), metadata=bearer(token))
        assert [q.name for q in listed.queues] == ["default"]
        await queues.GetQueue(queues_pb2.GetQueueRequest(queue="default"), metadata=bearer(token))
        for call in (
            queues.PauseQueue(queues_pb2.PauseQueueRequest(queue="default"), metadata=bearer(token)),
            queues.ResumeQueue(queues_pb2.ResumeQueueRequest(queue="default"), metadata=bearer(token)),
            queues.ConfigureQueue(
                queues_pb2.ConfigureQueueRequest(queue="default", concurrency_limit=1), metadata=bearer(token)
            ),
        ):
            await rpc_error(call, grpc.StatusCode.PERMISSION_DENIED)
    paused = await queues.PauseQueue(queues_pb2.PauseQueueRequest(queue="default"), metadata=bearer(ADMIN))
    assert paused.queue.paused
