"""Redis killed (SIGKILL) under load and restarted: UNAVAILABLE fast during the outage, recovery by
itself afterwards, and with appendfsync always no acknowledged task lost."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from claudebench.client import AsyncClient, Worker
from claudebench.config import Settings
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel, until


@pytest.fixture
async def durable_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    redis_server = EmbeddedRedis(tmp_path / "redis", persistent=True, fsync="always").start()
    yield redis_server
    redis_server.stop()


@pytest.mark.timeout(90)
async def test_kill_redis_under_load(durable_redis: EmbeddedRedis) -> None:
    settings = Settings(listen="127.0.0.1:0", redis_url=durable_redis.url, redis_timeout_s=1.0)
    app = ClaudebenchServer(settings, durable_redis.url)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    stub = tasks_pb2_grpc.TaskServiceStub(channel)
    acknowledged: list[str] = []
    outage_codes: list[grpc.StatusCode] = []
    slowest_failure = 0.0
    stop = False

    async def producer(n: int) -> None:
        nonlocal slowest_failure
        i = 0
        while not stop:
            started = time.monotonic()
            try:
                reply = await stub.CreateTask(tasks_pb2.CreateTaskRequest(text=f"p{n}-{i}"), timeout=5)
                acknowledged.append(reply.task.id)
            except grpc.aio.AioRpcError as exc:
                outage_codes.append(exc.code())
                slowest_failure = max(slowest_failure, time.monotonic() - started)
                await asyncio.sleep(0.05)
            i += 1

    try:
        producers = [asyncio.create_task(producer(n)) for n in range(4)]
        await asyncio.sleep(1.0)
        durable_redis.kill()
        await asyncio.sleep(1.5)
        durable_redis.start()  # same port and data directory: the AOF is replayed
        restarted = time.monotonic()
        before = len(acknowledged)
        while len(acknowledged) == before:
            assert time.monotonic() - restarted < 2.0, "no create succeeded within 2 s of the restart"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        stop = True
        await asyncio.gather(*producers)

        assert outage_codes, "the outage was not noticed"
        assert set(outage_codes) == {grpc.StatusCode.UNAVAILABLE}
        assert slowest_failure < 3.0  # fails fast: well inside the 5 s deadline
        missing = []
        for task_id in acknowledged:
            try:
                await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id), timeout=5)
            except grpc.aio.AioRpcError:
                missing.append(task_id)
        assert missing == [], f"{len(missing)} acknowledged tasks were lost"
    finally:
        stop = True
        await close_channel(channel)
        await app.stop(grace_s=0)


@pytest.mark.timeout(90)
async def test_a_streaming_worker_carries_on_after_redis_restarts(durable_redis: EmbeddedRedis) -> None:
    settings = Settings(listen="127.0.0.1:0", redis_url=durable_redis.url, redis_timeout_s=1.0)
    app = ClaudebenchServer(settings, durable_redis.url)
    await app.start()
    runs: Counter[str] = Counter()

    async def handler(task: tasks_pb2.Task) -> str:
        runs[task.id] += 1
        return task.text

    try:
        async with AsyncClient(f"127.0.0.1:{app.port}", timeout=2) as client:
            worker = Worker(client, "through-redis-restart", handler, capacity=2, max_backoff_s=0.3)
            running = asyncio.create_task(worker.run())
            before = [(await client.create_task(f"before {i}")).id for i in range(5)]
            await until(lambda: worker.completed >= 5, 20)
            durable_redis.kill()
            await asyncio.sleep(1.0)
            durable_redis.start()  # same port and data: the AOF is replayed
            after = []
            for i in range(5):
                for _ in range(100):  # the server answers UNAVAILABLE until it reconnected
                    try:
                        after.append((await client.create_task(f"after {i}")).id)
                        break
                    except grpc.aio.AioRpcError:
                        await asyncio.sleep(0.1)
            await until(lambda: worker.completed >= 10, 30)
            assert not running.done()
            worker.stop()
            await asyncio.wait_for(running, 15)
            for task_id in before + after:
                assert (await client.get_task(task_id)).status == tasks_pb2.TASK_STATUS_COMPLETED
            assert max(runs.values()) == 1
    finally:
        await app.stop(grace_s=0)
