"""Redis going away: calls fail fast with UNAVAILABLE (never UNKNOWN/INTERNAL) and the service
recovers by itself when Redis is back, reloading its scripts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from claudebench.config import Settings
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.keys import KEY_SCHEMA_VERSION
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    redis_server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    yield redis_server
    redis_server.stop()


async def test_outage_gives_unavailable_then_recovers(private_redis: EmbeddedRedis) -> None:
    settings = Settings(listen="127.0.0.1:0", redis_url=private_redis.url, redis_timeout_s=1.0)
    app = ClaudebenchServer(settings, private_redis.url)
    await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="before"))

            private_redis.stop()
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as down:
                await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="during"), timeout=10)
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "Redis is unavailable" in (down.value.details() or "")
            assert time.monotonic() - started < 5

            private_redis.start()  # same port, empty, no scripts loaded
            created = await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="after"), timeout=10)
            assert created.task.text == "after"
    finally:
        await app.stop(grace_s=0)


async def test_grpc_health_reports_redis_going_away_and_coming_back(private_redis: EmbeddedRedis) -> None:
    settings = Settings(listen="127.0.0.1:0", redis_url=private_redis.url, redis_timeout_s=1.0)
    app = ClaudebenchServer(settings, private_redis.url)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    health: Any = health_pb2_grpc.HealthStub(channel)

    async def status_becomes(expected: int) -> None:
        for _ in range(100):
            reply = await health.Check(health_pb2.HealthCheckRequest(service="claudebench.v1.TaskService"))
            if reply.status == expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"health never became {expected}")

    try:
        await status_becomes(health_pb2.HealthCheckResponse.SERVING)
        private_redis.stop()
        await status_becomes(health_pb2.HealthCheckResponse.NOT_SERVING)
        private_redis.start()  # empty: a replaced Redis
        await status_becomes(health_pb2.HealthCheckResponse.SERVING)
        # Serving again means the new Redis holds our key schema and every script already.
        check = aioredis.Redis(port=private_redis.port, decode_responses=True)
        assert await check.get("cb:schema:version") == str(KEY_SCHEMA_VERSION)
        assert all(await check.script_exists(*(s.sha for s in app.executor.scripts.values())))
        await check.aclose()
    finally:
        await close_channel(channel)
        await app.stop(grace_s=0)
