"""Health and reflection (open, not ours) answer an undecodable request with INVALID_ARGUMENT,
never UNKNOWN with a Python class name (issue 15 finding 6, the services it left out)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.api.helpers import rpc_error

CORRUPT = b"\xff\xff\xff"


@pytest.mark.parametrize("method", ["Check", "List"])
async def test_health_unary_methods(channel: grpc.aio.Channel, method: str) -> None:
    unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/grpc.health.v1.Health/{method}"
    )
    call = unary(CORRUPT)
    details = await rpc_error(call, grpc.StatusCode.INVALID_ARGUMENT)
    assert "could not be decoded" in details
    assert "class" not in details


async def test_health_watch_and_list(channel: grpc.aio.Channel) -> None:
    stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        "/grpc.health.v1.Health/Watch"
    )
    await rpc_error(stream(CORRUPT).read(), grpc.StatusCode.INVALID_ARGUMENT)
    health: Any = health_pb2_grpc.HealthStub(channel)
    await rpc_error(health.List(health_pb2.HealthListRequest()), grpc.StatusCode.UNIMPLEMENTED)  # type: ignore[attr-defined]


async def test_reflection(channel: grpc.aio.Channel) -> None:
    bidi: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    )
    corrupt = bidi()
    await corrupt.write(CORRUPT)
    details = await rpc_error(asyncio.wait_for(corrupt.read(), 10), grpc.StatusCode.INVALID_ARGUMENT)
    assert "could not be decoded" in details
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(cast(Any, channel))
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    reply = await asyncio.wait_for(call.read(), 10)
    assert "claudebench.v1.TaskService" in {s.name for s in reply.list_services_response.service}
    call.cancel()
