"""The dashboard's schedule routes, now that the schedule RPCs are built: listed in the
capabilities, transcoded onto the servicer like every route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from google.protobuf import duration_pb2

from claudebench.api.http.app import DashboardServer
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc


@pytest.fixture
async def http(server: ClaudebenchServer) -> AsyncIterator[str]:
    dashboard = DashboardServer(server.dashboard())
    port = await dashboard.start("127.0.0.1:0")
    yield f"http://127.0.0.1:{port}"
    await dashboard.stop()


async def test_schedules_are_listed_read_paused_and_resumed(http: str, channel: grpc.aio.Channel) -> None:
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    template = tasks_pb2.CreateTaskRequest(text="sweep")
    every = duration_pb2.Duration(seconds=300)
    await tasks.CreateSchedule(
        tasks_pb2.CreateScheduleRequest(schedule_id="sw", interval=every, template=template)
    )
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{http}/api/v1/capabilities") as r:
            rpcs = set((await r.json())["rpcs"])
        assert {"ListSchedules", "GetSchedule", "PauseSchedule", "ResumeSchedule"} <= rpcs
        async with client.get(f"{http}/api/v1/schedules") as r:
            listed = await r.json()
        assert [(s["scheduleId"], s["interval"], s["template"]["text"]) for s in listed["schedules"]] == [
            ("sw", "300s", "sweep")
        ]
        async with client.post(f"{http}/api/v1/schedules/sw/pause") as r:
            assert (await r.json())["schedule"]["paused"] is True
        async with client.post(f"{http}/api/v1/schedules/sw/resume") as r:
            resumed = (await r.json())["schedule"]
        assert resumed["paused"] is False
        assert "nextRunTime" in resumed
        async with client.get(f"{http}/api/v1/schedules/nope") as r:
            assert r.status == 404
            assert (await r.json())["error"]["message"] == "Schedule nope does not exist"
