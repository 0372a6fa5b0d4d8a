"""The dashboard's HTTP API against a real server: transcoded RPCs, SSE resume, auth."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from claudebench.api.http.app import STATIC_DIR, DashboardServer
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
    assert "ListSchedules" not in capabilities["rpcs"]  # answered UNIMPLEMENTED until it is built
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
