"""A blocked Redis (CLIENT PAUSE): calls honour the client's deadline and the server's Redis
timeout, and nothing leaks afterwards."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
import redis.asyncio as aioredis

from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel


@pytest.mark.timeout(60)
async def test_paused_redis(settings: Settings, redis_client: aioredis.Redis) -> None:
    fast = Settings(listen="127.0.0.1:0", redis_url=settings.redis_url, redis_timeout_s=1.0)
    assert fast.redis_url is not None
    app = ClaudebenchServer(fast, fast.redis_url)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    stub = tasks_pb2_grpc.TaskServiceStub(channel)
    try:
        await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="warm"))
        await redis_client.client_pause(3000, all=True)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as short:
            await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="deadline"), timeout=0.3)
        assert short.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 1.0
        with pytest.raises(grpc.aio.AioRpcError) as long:
            await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="server timeout"), timeout=10)
        assert long.value.code() == grpc.StatusCode.UNAVAILABLE  # the server's 1 s Redis timeout
        await asyncio.sleep(3.0)  # the pause ends
        for i in range(20):
            await stub.CreateTask(tasks_pb2.CreateTaskRequest(text=f"after {i}"), timeout=5)
        assert isinstance(app.redis, aioredis.Redis)
        pool = app.redis.connection_pool
        in_use = len(getattr(pool, "_in_use_connections", ()))
        assert in_use == 0, f"{in_use} Redis connections still checked out"
    finally:
        await redis_client.client_unpause()
        await close_channel(channel)
        await app.stop(grace_s=0)
