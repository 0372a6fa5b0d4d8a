"""The dashboard's HTTP API against a real server: transcoded RPCs, SSE resume, auth."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from google.protobuf import struct_pb2

from claudebench.api.http.app import STATIC_DIR, DashboardServer
from claudebench.api.http.events import EncodedEvents
from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import serving


@pytest.fixture
async def http(server: ClaudebenchServer) -> AsyncIterator[str]:
    dashboard = DashboardServer(server.dashboard())
    port = await dashboard.start("127.0.0.1:0")
    yield f"http://127.0.0.1:{port}"
    await dashboard.stop()


async def read_event(response: aiohttp.ClientResponse) -> dict[str, str]:
    """The next SSE event (comments and the retry line skipped) as {field: value}."""
    while True:
        block = (await response.content.readuntil(b"\n\n")).decode()
        fields = dict(
            line.split(": ", 1) for line in block.strip().splitlines() if not line.startswith((":", "retry"))
        )
        if fields:
            return fields


async def test_tasks_are_listed_read_and_deleted_through_the_servicers(
    http: str, channel: grpc.aio.Channel
) -> None:
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    created = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="hello", priority=7))).task
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{http}/api/v1/tasks", params={"status": "TASK_STATUS_PENDING"}) as r:
            listed = await r.json()
        assert [t["id"] for t in listed["tasks"]] == [created.id]
        assert listed["tasks"][0]["status"] == "TASK_STATUS_PENDING"
        assert listed["totalSize"] == 1
        async with client.get(f"{http}/api/v1/tasks/{created.id}") as r:
            assert (await r.json())["task"]["priority"] == 7
        async with client.get(f"{http}/api/v1/tasks", params={"pageSize": "0x"}) as r:
            assert r.status == 400
        async with client.delete(f"{http}/api/v1/tasks/{created.id}") as r:
            assert r.status == 200
        async with client.get(f"{http}/api/v1/tasks/{created.id}") as r:
            assert r.status == 404
            assert (await r.json())["error"]["status"] == "NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=created.id))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_capabilities_list_only_implemented_rpcs(http: str) -> None:
    async with aiohttp.ClientSession() as client, client.get(f"{http}/api/v1/capabilities") as r:
        capabilities = await r.json()
    assert {"ListTasks", "GetTask", "DeleteTask", "GetHealth", "GetState"} <= set(capabilities["rpcs"])
    assert {"ListQueues", "GetQueue", "PauseQueue", "ResumeQueue"} <= set(capabilities["rpcs"])
    assert {"CancelTask", "RetryTask"} <= set(capabilities["rpcs"])
    assert {"ListSchedules", "GetSchedule"} <= set(capabilities["rpcs"])
    assert capabilities["auth"] is False


async def test_cancel_and_retry_over_http(http: str, channel: grpc.aio.Channel) -> None:
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    created = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="x"))).task
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{http}/api/v1/tasks/{created.id}/cancel", json={"reason": "obsolete"}) as r:
            assert r.status == 200
            assert (await r.json())["task"]["status"] == "TASK_STATUS_CANCELLED"
        async with client.post(f"{http}/api/v1/tasks/{created.id}/cancel", json={}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["status"] == "FAILED_PRECONDITION"
        async with client.post(f"{http}/api/v1/tasks/{created.id}/retry", json={"resetAttempts": True}) as r:
            assert r.status == 200
            assert (await r.json())["task"]["status"] == "TASK_STATUS_PENDING"


async def test_events_resume_after_last_event_id(http: str, channel: grpc.aio.Channel) -> None:
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    ids = [(await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}"))).task.id for i in range(3)]
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{http}/api/v1/events", params={"after": "0"}) as r:
            first = await read_event(r)
        assert json.loads(first["data"])["taskId"] == ids[0]
        headers = {"Last-Event-ID": first["id"]}
        async with client.get(f"{http}/api/v1/events", headers=headers) as r:
            seen = [json.loads((await read_event(r))["data"])["taskId"] for _ in range(2)]
        assert seen == ids[1:]
        async with client.get(f"{http}/api/v1/events", headers={"Last-Event-ID": "1-0"}) as r:
            reload = await read_event(r)  # older than the oldest retained? the stream starts later
        assert reload["event"] in ("task", "reload")


async def test_reader_token_sees_but_may_not_act(settings: Settings, redis_client: object) -> None:
    settings = dataclasses.replace(settings, auth_tokens="admintok:admin,readtok:reader")
    async with serving(settings) as (app, _channel):
        dashboard = DashboardServer(app.dashboard())
        port = await dashboard.start("127.0.0.1:0")
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as client:
                async with client.get(f"{base}/api/v1/tasks") as r:
                    assert r.status == 401
                reader = {"Authorization": "Bearer readtok"}
                async with client.get(f"{base}/api/v1/tasks", headers=reader) as r:
                    assert r.status == 200
                async with client.delete(f"{base}/api/v1/tasks/x", headers=reader) as r:
                    assert r.status == 403
                    assert (await r.json())["error"]["status"] == "PERMISSION_DENIED"
                admin = {"Authorization": "Bearer admintok"}
                async with client.delete(f"{base}/api/v1/tasks/x", headers=admin) as r:
                    assert r.status == 404  # allowed, and the task does not exist
        finally:
            await dashboard.stop()


def test_vendored_chart_library_matches_the_pinned_npm_package() -> None:
    vendor = STATIC_DIR / "vendor" / "uplot"
    pinned = json.loads((vendor / "VENDOR.json").read_text())
    for name, digest in pinned["files"].items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert f"(v{pinned['version']})" in Path(vendor / "uPlot.iife.min.js").read_text()[:100]


async def test_an_sse_client_that_stops_reading_is_cut_off_by_the_subscriber_byte_bound(
    settings: Settings, redis_client: object
) -> None:
    """The SSE stream is the WatchTasks code path: a subscriber that falls behind by more than the
    per-subscriber byte bound (16 MiB) is ended and unsubscribed; the server does not hold every
    event for it (60 MB are published here)."""
    async with serving(settings) as (app, channel):
        dashboard = DashboardServer(app.dashboard())
        port = await dashboard.start("127.0.0.1:0")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            for _ in range(100):
                if app.hub.subscriber_count == 1:
                    break
                await asyncio.sleep(0.02)
            assert app.hub.subscriber_count == 1
            tasks = tasks_pb2_grpc.TaskServiceStub(channel)
            big = struct_pb2.Struct()
            big.update({"pad": "x" * 20_000})
            # Far more than the socket buffers hold: the stream's writes block, the hub's buffer
            # for this subscriber fills, and the subscriber is ended.
            for batch in range(60):
                requests = [tasks_pb2.CreateTaskRequest(text=f"{batch}.{i}", metadata=big) for i in range(50)]
                await tasks.CreateTasks(tasks_pb2.CreateTasksRequest(tasks=requests))
                if app.hub.subscriber_count == 0:
                    break
            for _ in range(250):
                if app.hub.subscriber_count == 0:
                    break
                await asyncio.sleep(0.02)
            assert app.hub.subscriber_count == 0  # while the client is still connected, not reading
        finally:
            writer.close()
            await dashboard.stop()


def test_an_event_is_encoded_once_for_every_stream_and_the_cache_is_bounded() -> None:
    encoded = EncodedEvents(size=2)
    events = [tasks_pb2.TaskEvent(event_id=f"1-{i}", task_id=f"t{i}") for i in range(3)]
    first = encoded.task(events[0])
    assert first.startswith(b"id: 1-0\nevent: task\ndata: ")
    assert json.loads(first.split(b"data: ", 1)[1]) == {"eventId": "1-0", "taskId": "t0"}
    assert encoded.task(events[0]) is first  # the same bytes for the next stream
    encoded.task(events[1])
    encoded.task(events[2])  # the oldest goes
    assert encoded.task(events[0]) is not first
