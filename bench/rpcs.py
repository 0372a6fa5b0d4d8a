"""The per-RPC scenario: every RPC's latency and throughput beside a ceiling measured with it."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import struct_pb2

from bench import bare, load
from claudebench.v1 import hooks_pb2, hooks_pb2_grpc, system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc


async def seed(tasks: Any, system: Any, count: int, workers: int) -> list[str]:
    """Create `count` tasks, 64 at a time; then register `workers` workers with room for them."""
    ids: list[str] = []
    for start in range(0, count, 64):
        replies = await asyncio.gather(
            *(
                tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"seed {i}"))
                for i in range(start, min(count, start + 64))
            )
        )
        ids.extend(r.task.id for r in replies)
    for w in range(workers):
        await system.Register(
            system_pb2.RegisterRequest(instance_id=f"bench-w{w}", roles=["bench"], max_tasks=1000)
        )
    return ids


async def heartbeat_forever(system: Any, instance_ids: list[str]) -> None:
    """Keep the bench's workers live (the liveness TTL is 30 s; a run is longer)."""
    while True:
        await asyncio.sleep(5)
        for instance_id in instance_ids:
            await system.Heartbeat(system_pb2.HeartbeatRequest(instance_id=instance_id))


async def per_rpc(address: str, ceiling_address: str, seconds: float) -> dict[str, Any]:
    """Latency at 1 in flight and throughput at 16 and 64 in flight, per RPC.

    Each RPC is paired with the EVALSHA ceiling (at ceiling_address) measured just before it: on a
    shared machine the ceiling itself moves by tens of percent within a run, so a ratio against a
    ceiling measured minutes earlier says more about the machine than about the RPC.
    """
    results: dict[str, Any] = {}
    async with (
        grpc.aio.insecure_channel(address) as channel,
        grpc.aio.insecure_channel(ceiling_address) as ceiling_channel,
    ):
        ceiling = bare.unary_call(ceiling_channel, bare.EVALSHA)
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        hooks = hooks_pb2_grpc.HookServiceStub(channel)
        # Enough tasks for the claims, the completions and the assignments at any rate reachable
        # here (a phase is the latency run plus two throughput runs: about 4 x seconds).
        budget = int(4 * seconds * 2500) + 1000
        pending = await seed(tasks, system, 3 * budget, workers=3 * budget // 1000 + 1)
        assignees = [f"bench-a{n}" for n in range(budget // 1000 + 2)]
        for name in assignees:
            await system.Register(system_pb2.RegisterRequest(instance_id=name, max_tasks=1000))
        held: list[tuple[str, str]] = []
        sample = pending[0]
        worker_slots = [f"bench-w{w}" for w in range(3 * budget // 1000 + 1)]
        # Claims take tasks from the head of the queue (creation order): assign from the tail.
        pending_iter = iter(reversed(pending[1:]))
        beating = asyncio.create_task(heartbeat_forever(system, worker_slots + assignees))

        async def claim(i: int) -> Any:
            reply = await tasks.ClaimTask(
                tasks_pb2.ClaimTaskRequest(worker_id=worker_slots[i % len(worker_slots)])
            )
            held.extend((t.id, t.assigned_to) for t in reply.tasks)
            return reply

        async def top_up_held(target: int) -> None:
            for worker in worker_slots:
                while len(held) < target:
                    try:
                        reply = await tasks.ClaimTask(
                            tasks_pb2.ClaimTaskRequest(worker_id=worker, max_tasks=100)
                        )
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                            raise
                        break  # this worker is full: the next one
                    if not reply.tasks:
                        break
                    held.extend((t.id, t.assigned_to) for t in reply.tasks)

        async def complete(i: int) -> Any:
            task_id, worker = held.pop()
            return await tasks.CompleteTask(
                tasks_pb2.CompleteTaskRequest(
                    task_id=task_id, worker_id=worker, result=struct_pb2.Value(number_value=1)
                )
            )

        async def assign(i: int) -> Any:
            return await tasks.AssignTask(
                tasks_pb2.AssignTaskRequest(
                    task_id=next(pending_iter), instance_id=assignees[i % len(assignees)]
                )
            )

        calls: dict[str, Any] = {
            "CreateTask": lambda i: tasks.CreateTask(
                tasks_pb2.CreateTaskRequest(text=f"bench {i}", priority=i % 101)
            ),
            "GetTask": lambda i: tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=sample)),
            "ClaimTask": claim,
            "CompleteTask": complete,
            "UpdateTask": lambda i: tasks.UpdateTask(
                tasks_pb2.UpdateTaskRequest(task_id=sample, text=f"v{i}")
            ),
            "AssignTask": assign,
            "Register": lambda i: system.Register(system_pb2.RegisterRequest(instance_id=f"bench-r{i % 64}")),
            "Heartbeat": lambda i: system.Heartbeat(system_pb2.HeartbeatRequest(instance_id="bench-w0")),
            "PreToolUse": lambda i: hooks.PreToolUse(
                hooks_pb2.PreToolUseRequest(
                    tool="Bash", params=struct_pb2.Value(string_value="ls -la"), instance_id=f"bench-h{i}"
                )
            ),
            "GetMetrics": lambda i: system.GetMetrics(system_pb2.GetMetricsRequest()),
            "GetState": lambda i: system.GetState(system_pb2.GetStateRequest()),
        }
        for name, call in calls.items():
            if name == "CompleteTask":
                await top_up_held(budget)
            paired = await load.unary_figures(ceiling, seconds)
            lat = await load.latency(call, seconds)
            results[name] = {
                "ceiling": {key: paired[key] for key in ("p50_ms", "calls_per_s_16")},
                "p50_ms": lat.p50_ms,
                "p99_ms": lat.p99_ms,
                "p999_ms": lat.p999_ms,
                "calls_per_s_16": await load.throughput(call, 16, seconds),
                "calls_per_s_64": await load.throughput(call, 64, seconds),
            }
        beating.cancel()
    return results
