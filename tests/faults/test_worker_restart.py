"""The Python Worker survives a server restart: the server process is killed (SIGKILL) while the
worker streams from it and runs tasks, started again on the same port, and the worker reconnects
by itself and carries on; every task completes exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import grpc
import pytest

from claudebench.client import AsyncClient, Worker
from claudebench.ports import free_port
from claudebench.processes import stop_processes
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import until
from tests.server_process import spawn_server

ENV = {"CLAUDEBENCH_INSTANCE_TTL_MS": "3000", "CLAUDEBENCH_HEARTBEAT_INTERVAL_MS": "200"}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("stream", [True, False], ids=["work-stream", "long-poll"])
async def test_worker_survives_a_server_restart(redis_server_url: str, tmp_path: Path, stream: bool) -> None:
    import redis

    redis.Redis.from_url(redis_server_url).flushdb()
    port = free_port()
    server = spawn_server(redis_server_url, port, ENV, tmp_path / "first.log")
    runs: Counter[str] = Counter()

    async def handler(task: tasks_pb2.Task) -> str:
        runs[task.id] += 1
        await asyncio.sleep(0.05)
        return task.text

    address = f"127.0.0.1:{port}"
    try:
        async with AsyncClient(address, timeout=2) as client:
            worker = Worker(client, "survivor", handler, capacity=3, stream=stream, max_backoff_s=0.5)
            running = asyncio.create_task(worker.run())
            first = [(await client.create_task(f"before {i}")).id for i in range(10)]
            await until(lambda: worker.completed >= 10, 30)

            server.send_signal(signal.SIGKILL)
            server.wait()
            await asyncio.sleep(1.0)  # the worker sees UNAVAILABLE and keeps retrying
            assert not running.done()
            server = spawn_server(redis_server_url, port, ENV, tmp_path / "second.log")

            # A channel of its own that waits for the server (the worker's is backing off).
            async with grpc.aio.insecure_channel(address) as channel:
                producer = tasks_pb2_grpc.TaskServiceStub(channel)
                second = [
                    (
                        await producer.CreateTask(
                            tasks_pb2.CreateTaskRequest(text=f"after {i}"), wait_for_ready=True, timeout=10
                        )
                    ).task.id
                    for i in range(10)
                ]
            await until(lambda: worker.completed >= 20, 30)
            worker.stop()
            await asyncio.wait_for(running, 15)
            for task_id in first + second:
                task = await client.get_task(task_id)
                assert task.status == tasks_pb2.TASK_STATUS_COMPLETED, task
            assert set(runs) == set(first + second)
            assert max(runs.values()) == 1  # nothing ran twice
            assert worker.completed == 20
    finally:
        stop_processes([server])
