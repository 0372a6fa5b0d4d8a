"""Small helpers for RPC tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.telemetry import Telemetry
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc

Tasks = tasks_pb2_grpc.TaskServiceStub


async def rpc_error(call: Awaitable[Any], code: grpc.StatusCode) -> str:
    """Await a call that must fail with `code`; return its details."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    details = info.value.details()
    assert details
    return details


async def create(tasks: Tasks, count: int, priority: int = 50) -> list[str]:
    return [
        (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}", priority=priority))).task.id
        for i in range(count)
    ]


async def pending_ids(tasks: Tasks) -> set[str]:
    listed = await tasks.ListTasks(tasks_pb2.ListTasksRequest(status=tasks_pb2.TASK_STATUS_PENDING))
    return {t.id for t in listed.tasks}


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Poll an async predicate until it holds (recovery runs in the background)."""
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """`eventually` for a plain (not awaitable) condition."""

    async def holds() -> bool:
        return check()

    await eventually(holds, seconds)


async def close_channel(channel: grpc.aio.Channel) -> None:
    """Close a client channel, bounded: grpc.aio's close can wait forever on the internal task of a
    streaming call the test already cancelled (a client-library issue, grpc/grpc#41875), which
    says nothing about the server under test."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(channel.close(), 5)


async def subscribed(server: ClaudebenchServer, count: int) -> None:
    """Wait until the server holds `count` subscriptions (a stream is live once it is counted)."""
    for _ in range(500):
        if server.hub.subscriber_count == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.hub.subscriber_count} subscriptions, expected {count}")


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, telemetry: Telemetry | None = None
) -> AsyncIterator[tuple[ClaudebenchServer, grpc.aio.Channel]]:
    """A server on `settings` (and its redis_url) with a client channel; both closed afterwards."""
    assert settings.redis_url is not None
    app = ClaudebenchServer(settings, settings.redis_url, telemetry)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        yield app, channel
    finally:
        await close_channel(channel)
        await app.stop(grace_s=0)
