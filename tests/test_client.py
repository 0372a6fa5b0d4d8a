"""The Python client and Worker helper against a real server."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from claudebench.client import AsyncClient, Client, Worker
from claudebench.client.channel import SERVICE_CONFIG
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2


async def test_worker_runs_completes_fails_and_releases_on_stop(server: ClaudebenchServer) -> None:
    address = f"127.0.0.1:{server.port}"
    async with AsyncClient(address) as client:
        ids = [(await client.create_task(f"job {i}", metadata={"n": i})).id for i in range(30)]
        bad = (await client.create_task("explode")).id

        async def handler(task: tasks_pb2.Task) -> object:
            if task.text == "explode":
                raise ValueError("cannot do that")
            await asyncio.sleep(0.01)
            return {"n": task.metadata["n"]}

        worker = Worker(client, "py-worker", handler, capacity=4)
        running = asyncio.create_task(worker.run())
        for _ in range(200):
            if worker.completed + worker.failed == 31:
                break
            await asyncio.sleep(0.05)
        worker.stop()
        await asyncio.wait_for(running, 10)

        assert (worker.completed, worker.failed) == (30, 1)
        done = await client.get_task(ids[7])
        assert done.status == tasks_pb2.TASK_STATUS_COMPLETED
        assert done.result.struct_value["n"] == 7
        failed = await client.get_task(bad)
        assert (failed.status, failed.error) == (tasks_pb2.TASK_STATUS_FAILED, "ValueError: cannot do that")
        statuses = [t.status async for t in client.list_tasks(page_size=7)]
        assert len(statuses) == 31
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await client.heartbeat("py-worker")
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND  # unregistered on stop


async def test_watch_resumes_and_sync_client(server: ClaudebenchServer) -> None:
    address = f"127.0.0.1:{server.port}"

    def use_the_blocking_client() -> tasks_pb2.Task:
        with Client(address) as blocking:
            created = blocking.create_task("from sync", priority=3)
            blocking.register("sync-worker", max_tasks=1)
            (claimed,) = blocking.claim("sync-worker")
            assert (
                blocking.complete(claimed.id, "sync-worker", [1, 2]).status == tasks_pb2.TASK_STATUS_COMPLETED
            )
            return created

    async with AsyncClient(address) as client:
        events = client.watch(after_event_id="0", types=[tasks_pb2.TASK_EVENT_TYPE_CREATED])
        # The blocking client runs in a thread: the server under test shares this event loop.
        created = await asyncio.to_thread(use_the_blocking_client)
        first = await asyncio.wait_for(events.__anext__(), 5)
        assert first.task_id == created.id
        await events.aclose()


def test_retry_policy_covers_only_idempotent_calls() -> None:
    config = json.loads(SERVICE_CONFIG)
    names = {(n["service"].rsplit(".", 1)[1], n["method"]) for c in config["methodConfig"] for n in c["name"]}
    assert ("TaskService", "CompleteTask") in names
    assert ("TaskService", "CreateTask") not in names  # a retried create could make two tasks
    assert ("TaskService", "ClaimTask") not in names


@pytest.mark.parametrize("stream", [True, False])
async def test_worker_serves_only_its_queues(server: ClaudebenchServer, stream: bool) -> None:
    """Pushed (Work) or long-polled, a Worker registered for gpu takes gpu's tasks, not default's."""
    async with AsyncClient(f"127.0.0.1:{server.port}") as client:
        gpu = [
            (await client.tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"g{i}", queue="gpu"))).task.id
            for i in range(3)
        ]
        other = (await client.create_task("default work")).id
        handled: list[str] = []

        async def handler(task: tasks_pb2.Task) -> object:
            handled.append(task.id)
            return "ok"

        worker = Worker(client, "gpu-worker", handler, capacity=2, stream=stream, queues=["gpu"])
        running = asyncio.create_task(worker.run())
        for _ in range(200):
            if worker.completed == 3:
                break
            await asyncio.sleep(0.05)
        late = (await client.tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="g3", queue="gpu"))).task.id
        for _ in range(200):
            if worker.completed == 4:
                break
            await asyncio.sleep(0.05)
        worker.stop()
        await asyncio.wait_for(running, 10)
        assert sorted(handled) == sorted([*gpu, late])
        assert (await client.get_task(other)).status == tasks_pb2.TASK_STATUS_PENDING
