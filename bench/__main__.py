"""`python -m bench [--seconds S]`: start Redis, ceiling servers and claudebench, run the scenarios,
write bench/results/<date>.json and BENCHMARKS.md. Bounded: each measurement lasts seconds."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from bench import bare, fanout, load, peers, rpcs, sse
from bench import workers as python_workers
from bench.report import write_report
from bench.servers import claudebench_server, create_throughput, process
from bench.tracing import tracing_overhead
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.keys import Keyspace
from claudebench.ports import free_port
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.local_cluster import LocalCluster

ROOT = Path(__file__).resolve().parent.parent


async def ceilings(redis_url: str, seconds: float) -> dict[str, Any]:
    """The bare grpc.aio figures this run's ratios are taken against."""
    out: dict[str, Any] = {}
    for kind, method in (("echo", bare.ECHO), ("evalsha", bare.EVALSHA)):
        port = free_port()
        with process(["-m", "bench.bare", kind, str(port), redis_url]):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                out[kind] = await load.unary_figures(bare.unary_call(channel, method), seconds)
    port = free_port()
    with process(["-m", "bench.bare", "stream", str(port)]):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(bare.STREAM)
            count = 50_000
            started = time.perf_counter()
            received = 0
            async for _ in stream(str(count).encode()):
                received += 1
            out["stream"] = {"msgs_per_s": round(received / (time.perf_counter() - started), 1)}
    port = free_port()
    with process(["-m", "bench.bare", "fanout", str(port)]):
        out["fan_out_100"] = {
            str(rate): await fanout.bare_ceiling(f"127.0.0.1:{port}", 100, rate, seconds)
            for rate in (*fanout.RATES, 1000)
        }
    return out


async def lifecycle(address: str, seconds: float, workers: int) -> dict[str, Any]:
    """Scenario 2 (unary): tasks/s through create -> claim -> complete with N workers."""
    async with grpc.aio.insecure_channel(address) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        for w in range(workers):
            await system.Register(system_pb2.RegisterRequest(instance_id=f"life-{w}", max_tasks=10))

        async def one(i: int) -> None:
            worker = f"life-{i % workers}"
            await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"life {i}"))
            claimed = (await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id=worker))).tasks
            for task in claimed:
                await tasks.CompleteTask(
                    tasks_pb2.CompleteTaskRequest(
                        task_id=task.id, worker_id=worker, result=struct_pb2.Value(bool_value=True)
                    )
                )

        rate = await load.throughput(one, workers, seconds)
    return {"workers": workers, "tasks_per_s": rate}


async def lifecycle_batched(address: str, seconds: float, workers: int, batch: int = 100) -> dict[str, Any]:
    """Scenario 2 (batched): CreateTasks, ClaimTask(max_tasks=batch), CompleteTasks; tasks/s."""
    async with grpc.aio.insecure_channel(address) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        for w in range(workers):
            await system.Register(system_pb2.RegisterRequest(instance_id=f"batch-{w}", max_tasks=batch))
        done = 0

        async def one(i: int) -> None:
            nonlocal done
            worker = f"batch-{i % workers}"
            await tasks.CreateTasks(
                tasks_pb2.CreateTasksRequest(
                    tasks=[tasks_pb2.CreateTaskRequest(text=f"b {i}.{j}") for j in range(batch)]
                )
            )
            claimed = (
                await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id=worker, max_tasks=batch))
            ).tasks
            if claimed:
                await tasks.CompleteTasks(
                    tasks_pb2.CompleteTasksRequest(
                        completions=[
                            tasks_pb2.CompleteTaskRequest(
                                task_id=t.id, worker_id=worker, result=struct_pb2.Value(bool_value=True)
                            )
                            for t in claimed
                        ]
                    )
                )

        rounds = await load.throughput(one, workers, seconds)
    return {"workers": workers, "batch": batch, "tasks_per_s": round(rounds * batch, 1)}


BACKLOG = 20_000  # events one subscriber replays in the backlog measurement


async def events(address: str, redis_url: str, seconds: float) -> dict[str, Any]:
    """Scenario 4: CreateTask returning -> event arriving, with 1 and 100 subscribers at about
    1,000 events/s; 100 subscribers at the lower rates the bare fan-out ceiling is measured at; the
    events/s one subscriber receives from a backlog."""
    out: dict[str, Any] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        for subscribers in (1, 100):
            out[f"subscribers_{subscribers}"] = await fanout.watch_tasks(tasks, subscribers, 1000, seconds)
        out["subscribers_100_by_rate"] = {
            str(rate): await fanout.watch_tasks(tasks, 100, rate, seconds) for rate in fanout.RATES
        }
        # The newest 20,000 events, not the oldest retained ones: the stream is at its retention
        # cap by now, and background writes (dead workers' tasks handed back) trim its old end, so
        # a replay from "0" could rightly be cut off with OUT_OF_RANGE halfway.
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            missing = BACKLOG + 1 - await client.xlen(Keyspace().events)
            for first in range(0, max(0, missing), 100):
                await tasks.CreateTasks(
                    tasks_pb2.CreateTasksRequest(
                        tasks=[tasks_pb2.CreateTaskRequest(text=f"backlog {first + j}") for j in range(100)]
                    )
                )
            newest = await client.xrevrange(Keyspace().events, count=BACKLOG + 1)
        finally:
            await client.aclose()
        assert newest, "the event stream is empty"
        cursor = str(newest[-1][0])
        started = time.perf_counter()
        received = 0
        async for _ in tasks.WatchTasks(tasks_pb2.WatchTasksRequest(after_event_id=cursor)):
            received += 1
            if received >= BACKLOG:
                break
        out["one_subscriber_backlog_events_per_s"] = round(received / (time.perf_counter() - started), 1)
    return out


async def cost_growth(address: str, redis_url: str, seconds: float) -> dict[str, Any]:
    """Scenario 3: CreateTask/ClaimTask latency as the pending queue grows to 10^3, 10^5, 10^6
    tasks; memory per task; GetState/GetMetrics/CheckHealth as the fleet grows to 10^4 instances."""
    out: dict[str, Any] = {"pending": {}, "instances": {}}
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    base_memory = (await client.info("memory"))["used_memory"]
    async with grpc.aio.insecure_channel(address) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        await system.Register(system_pb2.RegisterRequest(instance_id="growth-w", max_tasks=1000))
        pending = 0
        for target in (1_000, 100_000, 1_000_000):
            while pending < target:
                size = min(1000, target - pending)
                batches = [
                    tasks.CreateTasks(
                        tasks_pb2.CreateTasksRequest(
                            tasks=[
                                tasks_pb2.CreateTaskRequest(text=f"g{pending + b * size + j}")
                                for j in range(size)
                            ]
                        )
                    )
                    for b in range(min(8, (target - pending) // size or 1))
                ]
                pending += size * len(batches)
                await asyncio.gather(*batches)
            # Seeding can outlast the liveness TTL: register again (keeps nothing stale).
            await system.Register(system_pb2.RegisterRequest(instance_id="growth-w", max_tasks=1000))
            create = await load.latency(
                lambda i: tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"probe {i}")), seconds / 2
            )
            claim = await load.latency(
                lambda i: tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="growth-w")),
                seconds / 2,
                warmup=10,
            )
            out["pending"][str(target)] = {"create_p50_ms": create.p50_ms, "claim_p50_ms": claim.p50_ms}
            # Claims fill the worker: release its capacity for the next size.
            await system.Unregister(system_pb2.UnregisterRequest(instance_id="growth-w"))
            await system.Register(system_pb2.RegisterRequest(instance_id="growth-w", max_tasks=1000))
        used = (await client.info("memory"))["used_memory"] - base_memory
        out["bytes_per_task"] = round(used / pending)
        registered = 0
        for target in (10, 1_000, 10_000):
            while registered < target:
                step = min(64, target - registered)
                await asyncio.gather(
                    *(
                        system.Register(system_pb2.RegisterRequest(instance_id=f"fleet-{registered + j}"))
                        for j in range(step)
                    )
                )
                registered += step
            state = await load.latency(lambda i: system.GetState(system_pb2.GetStateRequest()), seconds / 3)
            metrics = await load.latency(
                lambda i: system.GetMetrics(system_pb2.GetMetricsRequest()), seconds / 3
            )
            health = await load.latency(
                lambda i: system.CheckHealth(system_pb2.CheckHealthRequest()), seconds / 3
            )
            out["instances"][str(target)] = {
                "get_state_p50_ms": state.p50_ms,
                "get_metrics_p50_ms": metrics.p50_ms,
                "check_health_p50_ms": health.p50_ms,
            }
    await client.flushdb()
    await client.aclose()
    return out


async def processes_gain(redis_url: str, seconds: float) -> dict[str, Any]:
    """CreateTask/s at 16 in flight over 4 connections with 1 and with 2 server processes sharing
    the port (--workers, SO_REUSEPORT)."""
    out: dict[str, Any] = {}
    for workers in (1, 2):
        port = free_port()
        with claudebench_server(redis_url, port, env={"CLAUDEBENCH_WORKERS": str(workers)}):
            await asyncio.sleep(2)  # the sibling processes start after the first one reports
            out[f"workers_{workers}"] = await create_throughput(f"127.0.0.1:{port}", seconds, connections=4)
    out["gain"] = round(out["workers_2"] / out["workers_1"], 3)
    return out


def spread_namespaces(cluster: LocalCluster, count: int) -> list[str]:
    """`count` namespaces whose slots are served by different primaries."""
    chosen: dict[int, str] = {}
    for n in range(1000):
        owner = cluster.primary_of(f"cb:{{ns{n}}}:x")
        chosen.setdefault(owner, f"ns{n}")
        if len(chosen) == count:
            break
    return list(chosen.values())


async def scale_out(standalone_url: str, seconds: float) -> dict[str, Any]:
    """Redis Cluster: CreateTask/s at 16 in flight per namespace, with 1, 2 and 3 namespaces (one
    server process each, on different primaries), against one namespace on standalone Redis."""
    out: dict[str, Any] = {}
    port = free_port()
    with claudebench_server(standalone_url, port, namespace="solo"):
        out["standalone_1_namespace"] = await create_throughput(f"127.0.0.1:{port}", seconds)
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp), primaries=3) as cluster:
        namespaces = spread_namespaces(cluster, 3)
        for count in (1, 2, 3):
            ports = [free_port() for _ in range(count)]
            with ExitStack() as stack:
                for ns, ns_port in zip(namespaces, ports, strict=False):
                    stack.enter_context(claudebench_server(cluster.url, ns_port, namespace=ns))
                rates = await asyncio.gather(*(create_throughput(f"127.0.0.1:{p}", seconds) for p in ports))
            out[f"cluster_{count}_namespaces"] = round(sum(rates), 1)
    return out


async def run(seconds: float) -> dict[str, Any]:
    random.seed(7)
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds_per_measurement": seconds,
    }
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis_server:
        results["ceilings"] = await ceilings(redis_server.url, seconds)
        port = free_port()
        address = f"127.0.0.1:{port}"
        ceiling_port = free_port()
        with claudebench_server(redis_server.url, port):
            with process(["-m", "bench.bare", "evalsha", str(ceiling_port), redis_server.url]):
                results["rpcs"] = await rpcs.per_rpc(address, f"127.0.0.1:{ceiling_port}", seconds)
            results["lifecycle_unary"] = await lifecycle(address, seconds, workers=16)
            results["lifecycle_batched"] = await lifecycle_batched(address, seconds, workers=4)
            # Python Workers on the Work stream (and long-polling) beside the unary scenario.
            results["workers"] = await python_workers.measure(address, seconds)
            results["cost_growth"] = await cost_growth(address, redis_server.url, seconds)
    # The next scenarios each on a fresh Redis: the instances registered above go silent after
    # their TTL, and recovering them would run beside what is measured there.
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis_server:
        results["tracing"] = await tracing_overhead(redis_server.url, seconds)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis_server:
        port = free_port()
        with claudebench_server(redis_server.url, port):
            results["events"] = await events(f"127.0.0.1:{port}", redis_server.url, seconds)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis_server:
        results["sse"] = {**await sse.sse_vs_watch(redis_server.url, seconds), "seconds": seconds}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis_server:
        results["processes"] = await processes_gain(redis_server.url, seconds)
        results["scale_out"] = await scale_out(redis_server.url, seconds)
    results["peers"] = peers.measure(seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    results = asyncio.run(run(args.seconds))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = results["date"][:10]
    (args.out / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(results, ROOT / "BENCHMARKS.md")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
