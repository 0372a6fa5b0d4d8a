"""A worker process for the concurrency tests: register, then claim and complete until the queue is
empty; print the ids it claimed as JSON. Run as: python claimer.py ADDRESS WORKER_ID MAX_TASKS"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

import grpc
from google.protobuf import struct_pb2

from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc


def main() -> None:
    address, worker_id, max_tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    claimed: list[str] = []
    with grpc.insecure_channel(address) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        # A worker registration may hand over pending tasks at once (auto-assignment).
        batch: Sequence[tasks_pb2.Task] = system.Register(
            system_pb2.RegisterRequest(instance_id=worker_id, roles=["worker"], max_tasks=max_tasks)
        ).assigned_tasks
        while True:
            if not batch:
                batch = tasks.ClaimTask(
                    tasks_pb2.ClaimTaskRequest(worker_id=worker_id, max_tasks=max_tasks), timeout=10
                ).tasks
            if not batch:
                break
            for task in batch:
                claimed.append(task.id)
                tasks.CompleteTask(
                    tasks_pb2.CompleteTaskRequest(
                        task_id=task.id,
                        worker_id=worker_id,
                        result=struct_pb2.Value(string_value=worker_id),
                    ),
                    timeout=10,
                )
            batch = []
    json.dump(claimed, sys.stdout)


async def race(addresses: Sequence[str], workers: int) -> list[list[str]]:
    """Run `workers` claimer processes (worker-N, capacity 1 + N % 4), spread over the server
    addresses, until the queue is empty; the task ids each one claimed."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            addresses[n % len(addresses)],
            f"worker-{n}",
            str(1 + n % 4),
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(workers)
    ]
    outputs = [await p.communicate() for p in processes]
    assert all(p.returncode == 0 for p in processes), "a claimer process failed"
    return [json.loads(out) for out, _ in outputs]


if __name__ == "__main__":
    main()
