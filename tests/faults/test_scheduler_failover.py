"""The replica running the lifecycle scheduler is killed (SIGKILL) in the middle of its work
(promotions, lease expiries, retention due at once): the other replica takes the lease over and
finishes it; every task is promoted, timed out or expired exactly once, and the invariants hold."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, struct_pb2

from claudebench.keys import Keyspace
from claudebench.ports import free_port
from claudebench.processes import stop_processes
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel
from tests.conftest import ON_CLUSTER
from tests.invariants import assert_consistent, stream_events
from tests.server_process import spawn_server

REPLICA_ENV = {
    "CLAUDEBENCH_SCHEDULER_INTERVAL_S": "0.1",
    "CLAUDEBENCH_COMPLETED_RETENTION_S": "1",
}
N = 150


@pytest.mark.skipif(ON_CLUSTER, reason="reads the standalone keyspace directly")
@pytest.mark.timeout(90)
async def test_the_scheduler_survives_the_death_of_its_replica(
    redis_server_url: str, redis_client: aioredis.Redis, keys: Keyspace, tmp_path: Path
) -> None:
    port_a, port_b = free_port(), free_port()
    a = spawn_server(redis_server_url, port_a, REPLICA_ENV, tmp_path / "a.log")
    # A takes the scheduler lease first; B starts once A holds it.
    holder_a = None
    for _ in range(200):
        if holder_a := await redis_client.get(keys.lease("scheduler")):
            break
        await asyncio.sleep(0.05)
    assert holder_a
    b = spawn_server(redis_server_url, port_b, REPLICA_ENV, tmp_path / "b.log")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port_b}")
    try:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        await system_pb2_grpc.SystemServiceStub(channel).Register(
            system_pb2.RegisterRequest(instance_id="hangs", roles=["claimer"], max_tasks=1000)
        )
        finished = []
        for i in range(N):
            task = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"done {i}"))).task
            (claimed,) = (await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="hangs"))).tasks
            await tasks.CompleteTask(
                tasks_pb2.CompleteTaskRequest(
                    task_id=claimed.id, worker_id="hangs", result=struct_pb2.Value(bool_value=True)
                )
            )
            finished.append(task.id)
        lease = duration_pb2.Duration(nanos=800_000_000)
        timed = [
            (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}", timeout=lease))).task.id
            for i in range(N)
        ]
        claims = [tasks_pb2.ClaimTaskRequest(worker_id="hangs", max_tasks=100) for _ in range(2)]
        held = [t.id for claim in claims for t in (await tasks.ClaimTask(claim)).tasks]
        assert sorted(held) == sorted(timed)
        delay = duration_pb2.Duration(seconds=1)
        delayed = [
            (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"later {i}", delay=delay))).task.id
            for i in range(N)
        ]
        # Retention is under way, leases and delays fall due within a second: kill A now.
        a.send_signal(signal.SIGKILL)
        a.wait()

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = Counter(e["type"] for e in await stream_events(redis_client, keys))
            done = counts["timed_out"] >= N and counts["expired"] >= N and counts["updated"] >= N
            if done and await redis_client.get(keys.lease("scheduler")) != holder_a:
                break
            await asyncio.sleep(0.2)
        events = await stream_events(redis_client, keys)
        per_kind = {
            kind: Counter(e["task_id"] for e in events if e["type"] == kind)
            for kind in ("timed_out", "expired", "updated")
        }
        assert per_kind["timed_out"] == Counter({task_id: 1 for task_id in timed})
        assert per_kind["expired"] == Counter({task_id: 1 for task_id in finished})
        assert per_kind["updated"] == Counter({task_id: 1 for task_id in delayed})  # promoted once
        assert await redis_client.get(keys.lease("scheduler")) not in (None, holder_a)  # B holds it now
        assert b.poll() is None
    finally:
        await close_channel(channel)
        stop_processes([a, b])
    await assert_consistent(redis_client, keys)
