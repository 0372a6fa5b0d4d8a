"""The task lifecycle's benchmarks (issue 17): steady-state memory with retention, and the latency
of delayed-task promotion.

    python -m bench.soak memory --minutes 10 --rate 200 --retention 60
    python -m bench.soak promotion --tasks 100000

`memory` runs a claudebench server (a child process, on a fresh embedded Redis) with completed
tasks kept `--retention` seconds, and creates, claims and completes `--rate` tasks a second (batched
RPCs) for `--minutes`, sampling Redis's used_memory every 10 s. It prints one JSON line per sample
and a summary: the spread of used_memory over the samples after the warm-up (retention + the event
stream filling to its retention), which must stay within 10 %.

`promotion` creates `--tasks` tasks due at one instant a few seconds ahead and measures, per task,
the delay from its run_at to its promotion (the UPDATED event's time): p50 and p99. A worker claims
every 10 ms meanwhile (claims promote a batch first), unless `--no-claimer`: then only the scheduler
promotes, once a second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import grpc
import redis.asyncio as aioredis
from google.protobuf import struct_pb2, timestamp_pb2

from bench.servers import claudebench_server
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.keys import Keyspace
from claudebench.ports import free_port
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc

SAMPLE_S = 10.0
BATCH = 100


async def _steady_load(address: str, rate: float, seconds: float) -> int:
    """Create, claim and complete `rate` tasks a second in batches; returns how many finished."""
    done = 0
    async with grpc.aio.insecure_channel(address) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        await system.Register(
            system_pb2.RegisterRequest(instance_id="soak", roles=["claimer"], max_tasks=1000)
        )
        started = beat = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            if time.monotonic() - beat > 5:
                await system.Heartbeat(system_pb2.HeartbeatRequest(instance_id="soak"))
                beat = time.monotonic()
            due = int(elapsed * rate) - done
            if due < BATCH:
                await asyncio.sleep(BATCH / rate / 4)
                continue
            batch = [tasks_pb2.CreateTaskRequest(text="soak", metadata={"n": done}) for _ in range(BATCH)]
            await tasks.CreateTasks(tasks_pb2.CreateTasksRequest(tasks=batch))
            claimed = (
                await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="soak", max_tasks=BATCH))
            ).tasks
            await tasks.CompleteTasks(
                tasks_pb2.CompleteTasksRequest(
                    completions=[
                        tasks_pb2.CompleteTaskRequest(
                            task_id=t.id, worker_id="soak", result=struct_pb2.Value(bool_value=True)
                        )
                        for t in claimed
                    ]
                )
            )
            done += len(claimed)
    return done


async def memory(minutes: float, rate: float, retention_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as store:
        port = free_port()
        env = {"CLAUDEBENCH_COMPLETED_RETENTION_S": str(retention_s)}
        with claudebench_server(store.url, port, env):
            client = aioredis.Redis.from_url(store.url)
            samples: list[dict[str, Any]] = []

            async def sample() -> None:
                started = time.monotonic()
                while True:
                    await asyncio.sleep(SAMPLE_S)
                    info = await client.info("memory")
                    keys = Keyspace()
                    row = {
                        "t_s": round(time.monotonic() - started),
                        "used_memory": int(info["used_memory"]),
                        "tasks": int(await client.zcard(keys.all_tasks)),
                        "events": int(await client.xlen(keys.events)),
                    }
                    samples.append(row)
                    print(json.dumps(row), flush=True)

            sampler = asyncio.create_task(sample())
            finished = await _steady_load(f"127.0.0.1:{port}", rate, minutes * 60)
            sampler.cancel()
            await client.aclose()
    warm_up_s = retention_s + 120  # retention, then the event stream reaches its length cap
    steady = [s["used_memory"] for s in samples if s["t_s"] >= warm_up_s]
    spread = (max(steady) - min(steady)) / min(steady) if steady else None
    return {
        "minutes": minutes,
        "rate_per_s": rate,
        "retention_s": retention_s,
        "finished_tasks": finished,
        "samples": samples,
        "steady_used_memory_min": min(steady) if steady else None,
        "steady_used_memory_max": max(steady) if steady else None,
        "steady_spread": spread,
        "flat_within_10_percent": spread is not None and spread <= 0.10,
    }


async def _until_promoted(client: aioredis.Redis, keys: Keyspace) -> None:
    """Poll (a benchmark's observer, not part of what is measured) until the due index is empty."""
    for _ in range(100_000):
        if not await client.zcard(keys.due):
            return
        await asyncio.sleep(0.2)


async def promotion(count: int, claimer: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as store:
        port = free_port()
        env = {"CLAUDEBENCH_EVENT_RETENTION": str(4 * count)}
        with claudebench_server(store.url, port, env):
            client = aioredis.Redis.from_url(store.url, decode_responses=True)
            keys = Keyspace()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                tasks = tasks_pb2_grpc.TaskServiceStub(channel)
                # One instant for all, after the creates (about 2 ms per task on a busy laptop).
                run_at_ms = int(time.time() * 1000) + 5_000 + count // 2
                run_at = timestamp_pb2.Timestamp()
                run_at.FromMilliseconds(run_at_ms)
                for start in range(0, count, 1000):
                    batch = [
                        tasks_pb2.CreateTaskRequest(text="later", run_at=run_at)
                        for _ in range(min(1000, count - start))
                    ]
                    await tasks.CreateTasks(tasks_pb2.CreateTasksRequest(tasks=batch))
                await system_pb2_grpc.SystemServiceStub(channel).Register(
                    system_pb2.RegisterRequest(instance_id="poller", roles=["claimer"], max_tasks=1000)
                )

                async def poll() -> None:
                    """A worker claiming every 10 ms, as an idle fleet does: claims promote too."""
                    while True:
                        claim = tasks_pb2.ClaimTaskRequest(worker_id="poller", max_tasks=100)
                        with contextlib.suppress(grpc.aio.AioRpcError):  # at capacity: it promoted first
                            await tasks.ClaimTask(claim)
                        await asyncio.sleep(0.01)

                poller = asyncio.create_task(poll()) if claimer else None
                await _until_promoted(client, keys)
                if poller is not None:
                    poller.cancel()
            latencies: list[int] = []
            low = "-"
            while entries := cast(
                list[tuple[str, dict[str, str]]], await client.xrange(keys.events, low, "+", 10_000)
            ):
                latencies += [int(f["time"]) - run_at_ms for _, f in entries if f["type"] == "updated"]
                low = f"({entries[-1][0]}"
            await client.aclose()
    latencies.sort()

    def pct(p: float) -> int:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    return {
        "tasks": count,
        "claimer": claimer,
        "promoted": len(latencies),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    kinds = parser.add_subparsers(dest="kind", required=True)
    mem = kinds.add_parser("memory")
    mem.add_argument("--minutes", type=float, default=10)
    mem.add_argument("--rate", type=float, default=200, help="tasks a second")
    mem.add_argument("--retention", type=float, default=60, help="seconds completed tasks are kept")
    promo = kinds.add_parser("promotion")
    promo.add_argument("--tasks", type=int, default=100_000)
    promo.add_argument("--no-claimer", action="store_true", help="only the scheduler promotes")
    args = parser.parse_args()
    if args.kind == "memory":
        report = asyncio.run(memory(args.minutes, args.rate, args.retention))
        print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
        sys.exit(0 if report["flat_within_10_percent"] else 1)
    print(json.dumps(asyncio.run(promotion(args.tasks, not args.no_claimer))))


if __name__ == "__main__":
    main()
