"""The Python client's schedule methods against a real server."""

from __future__ import annotations

import grpc
import pytest

from claudebench.client import AsyncClient
from claudebench.client.async_client import create_request
from claudebench.server import ClaudebenchServer


async def test_schedule_methods(server: ClaudebenchServer) -> None:
    async with AsyncClient(f"127.0.0.1:{server.port}") as client:
        template = create_request("digest", 60, {"to": "team"}, None)
        daily = await client.create_schedule(
            "daily", template, cron="0 8 * * *", time_zone="America/New_York"
        )
        assert (daily.cron, daily.time_zone, daily.template.metadata["to"]) == (
            "0 8 * * *",
            "America/New_York",
            "team",
        )
        fast = await client.create_schedule("fast", template, every_s=1.5, paused=True)
        assert (fast.interval.ToMilliseconds(), fast.paused) == (1500, True)
        assert [s.schedule_id async for s in client.list_schedules(page_size=1)] == ["daily", "fast"]
        assert (await client.resume_schedule("fast")).HasField("next_run_time")
        assert (await client.pause_schedule("daily")).paused
        assert (await client.get_schedule("daily")).paused
        await client.delete_schedule("fast")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await client.get_schedule("fast")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
