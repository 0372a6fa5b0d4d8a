"""Register, Heartbeat, health and reflection through real stubs."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from claudebench.v1 import system_pb2 as pb
from claudebench.v1 import system_pb2_grpc
from tests.api.helpers import rpc_error

System = system_pb2_grpc.SystemServiceStub


async def test_register_and_heartbeat(system: System) -> None:
    first = await system.Register(pb.RegisterRequest(instance_id="w1", roles=["worker"]))
    second = await system.Register(pb.RegisterRequest(instance_id="w2", max_tasks=3))

    assert (first.registered, first.became_leader) == (True, True)
    assert (second.registered, second.became_leader) == (True, False)
    assert first.ttl.ToMilliseconds() == 30_000
    assert first.heartbeat_interval.ToMilliseconds() == 10_000
    beat = await system.Heartbeat(pb.HeartbeatRequest(instance_id="w1"))
    assert (beat.alive, beat.is_leader) == (True, True)
    assert not (await system.Heartbeat(pb.HeartbeatRequest(instance_id="w2"))).is_leader


async def test_register_and_heartbeat_errors(system: System) -> None:
    assert "not registered" in await rpc_error(
        system.Heartbeat(pb.HeartbeatRequest(instance_id="ghost")), grpc.StatusCode.NOT_FOUND
    )
    for request, message in [
        (pb.RegisterRequest(), "instance_id is required"),
        (pb.RegisterRequest(instance_id="w1", max_tasks=0), "max_tasks must be between 1 and 1000"),
        (pb.RegisterRequest(instance_id="w1", roles=["bad role"]), "role 'bad role'"),
    ]:
        assert message in await rpc_error(system.Register(request), grpc.StatusCode.INVALID_ARGUMENT)


async def test_health_serving_and_reflection(channel: grpc.aio.Channel) -> None:
    health: Any = health_pb2_grpc.HealthStub(channel)  # the typeshed stub lacks its methods
    for service in (
        "",
        "claudebench.v1.TaskService",
        "claudebench.v1.SystemService",
        "claudebench.v1.HookService",
    ):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    # The stub is typed for sync channels only; it works the same on an aio channel.
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in stub.ServerReflectionInfo(iter([request])):
        names = {s.name for s in reply.list_services_response.service}
        assert {"claudebench.v1.TaskService", "claudebench.v1.SystemService"} <= names
