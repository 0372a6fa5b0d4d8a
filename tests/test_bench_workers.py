"""The benchmark's Worker scenario runs end to end against a real server (no figure is asserted):
Python Workers on the Work stream and long-polling take tasks from producers and stop cleanly
while tasks keep arriving."""

from __future__ import annotations

import asyncio

from bench import workers
from claudebench.server import ClaudebenchServer


async def test_the_worker_scenario_runs_and_its_workers_stop(server: ClaudebenchServer) -> None:
    address = f"127.0.0.1:{server.port}"
    for stream in (True, False):
        life = await asyncio.wait_for(
            workers.lifecycle(address, 0.3, stream=stream, workers=2, capacity=2, producers=2), 60
        )
        assert set(life) == {"mode", "workers", "capacity", "producers", "tasks_per_s"}
        pickup = await asyncio.wait_for(workers.pickup(address, stream=stream, tasks=5, workers=2), 60)
        assert pickup["tasks"] == 5
