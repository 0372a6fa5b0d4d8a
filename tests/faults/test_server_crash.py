"""A server replica killed (SIGKILL) with calls and streams open: clients of the other replica
carry on, and the tasks of a worker that died with it come back through failure recovery."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from claudebench.ports import free_port
from claudebench.processes import stop_processes
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel
from tests.server_process import spawn_server

# Short liveness so the dead worker's tasks come back within the test.
REPLICA_ENV = {"CLAUDEBENCH_INSTANCE_TTL_MS": "600", "CLAUDEBENCH_RECOVERY_INTERVAL_S": "0.2"}


@pytest.fixture
def replicas(
    redis_server_url: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int, subprocess.Popen[bytes], int]]:
    import redis

    redis.Redis.from_url(redis_server_url).flushdb()
    port_a, port_b = free_port(), free_port()
    a = spawn_server(redis_server_url, port_a, REPLICA_ENV, tmp_path / "a.log")
    b = spawn_server(redis_server_url, port_b, REPLICA_ENV, tmp_path / "b.log")
    yield a, port_a, b, port_b
    stop_processes([a, b])


@pytest.mark.timeout(60)
async def test_killed_replica(
    replicas: tuple[subprocess.Popen[bytes], int, subprocess.Popen[bytes], int],
) -> None:
    a, port_a, _b, port_b = replicas
    to_a = grpc.aio.insecure_channel(f"127.0.0.1:{port_a}")
    to_b = grpc.aio.insecure_channel(f"127.0.0.1:{port_b}")
    tasks_a, tasks_b = tasks_pb2_grpc.TaskServiceStub(to_a), tasks_pb2_grpc.TaskServiceStub(to_b)
    try:
        ids = [
            (await tasks_b.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}"))).task.id for i in range(5)
        ]
        # A worker living in replica A's process space: it talks only to A, and dies with it.
        await system_pb2_grpc.SystemServiceStub(to_a).Register(
            system_pb2.RegisterRequest(instance_id="dies-with-a", max_tasks=5)
        )
        held = (
            await tasks_a.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="dies-with-a", max_tasks=5))
        ).tasks
        assert {t.id for t in held} == set(ids)
        stream = tasks_a.WatchTasks(tasks_pb2.WatchTasksRequest())

        a.send_signal(signal.SIGKILL)
        a.wait()

        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await asyncio.wait_for(stream.read(), 10)
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        # Replica B is unaffected ...
        assert (await tasks_b.CreateTask(tasks_pb2.CreateTaskRequest(text="still here"), timeout=5)).task.id
        # ... and recovers the dead worker's tasks by itself.
        for _ in range(100):
            listed = await tasks_b.ListTasks(tasks_pb2.ListTasksRequest(status=tasks_pb2.TASK_STATUS_PENDING))
            if set(ids) <= {t.id for t in listed.tasks}:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the dead worker's tasks did not come back")
    finally:
        await close_channel(to_a)
        await close_channel(to_b)
