"""The task lifecycle through Python `Worker`s, as users write them (issue 19, issue 20 lever 3):
producers call CreateTask one task per call; workers receive tasks over the `Work` stream (or
long-poll ClaimTask with `stream=False`) and complete them. Also the pickup latency at low load:
CreateTask returned -> handler started.

    python -m bench.workers ADDRESS [--seconds S]   (against a running server; prints JSON)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench.load import percentile
from claudebench.client import AsyncClient, Worker
from claudebench.v1 import tasks_pb2


async def _workers(
    address: str,
    prefix: str,
    count: int,
    capacity: int,
    stream: bool,
    started: dict[str, float],
    arrived: asyncio.Event,
) -> tuple[list[AsyncClient], list[Worker], list[asyncio.Task[None]]]:
    async def handle(task: tasks_pb2.Task) -> bool:
        started.setdefault(task.id, time.perf_counter())
        arrived.set()
        return True

    clients = [AsyncClient(address) for _ in range(count)]
    workers = [
        Worker(client, f"{prefix}-{i}", handle, capacity=capacity, stream=stream, poll_wait_s=5)
        for i, client in enumerate(clients)
    ]
    runs = [asyncio.create_task(w.run()) for w in workers]
    await asyncio.sleep(0.5)  # registered and connected
    return clients, workers, runs


async def _stop(clients: list[AsyncClient], workers: list[Worker], runs: list[asyncio.Task[None]]) -> None:
    for worker in workers:
        worker.stop()
    await asyncio.wait_for(asyncio.gather(*runs), 30)
    for client in clients:
        await client.close()


async def lifecycle(
    address: str,
    seconds: float,
    stream: bool = True,
    workers: int = 8,
    capacity: int = 8,
    producers: int = 16,
) -> dict[str, Any]:
    """Tasks/s completed by `workers` Python Workers while `producers` create one task per call."""
    prefix = "bw" if stream else "bp"
    started: dict[str, float] = {}
    clients, pool, runs = await _workers(address, prefix, workers, capacity, stream, started, asyncio.Event())
    stop = asyncio.Event()
    async with AsyncClient(address) as producer:

        async def produce() -> None:
            while not stop.is_set():
                await producer.create_task("bench")

        making = [asyncio.create_task(produce()) for _ in range(producers)]
        await asyncio.sleep(min(1.0, seconds / 2))  # warm up
        before = sum(w.completed for w in pool)
        began = time.perf_counter()
        await asyncio.sleep(seconds)
        done = sum(w.completed for w in pool) - before
        elapsed = time.perf_counter() - began
        stop.set()
        await asyncio.gather(*making)
    await _stop(clients, pool, runs)
    return {
        "mode": "work stream" if stream else "long-poll ClaimTask",
        "workers": workers,
        "capacity": capacity,
        "producers": producers,
        "tasks_per_s": round(done / elapsed, 1),
    }


async def pickup(address: str, stream: bool = True, tasks: int = 200, workers: int = 4) -> dict[str, Any]:
    """Low load: one task at a time; CreateTask returned -> its handler started (ms)."""
    prefix = "lw" if stream else "lp"
    started: dict[str, float] = {}
    arrived = asyncio.Event()
    clients, pool, runs = await _workers(address, prefix, workers, 4, stream, started, arrived)
    samples: list[float] = []
    async with AsyncClient(address) as producer:
        for _ in range(tasks):
            task = await producer.create_task("pickup")
            returned = time.perf_counter()
            while task.id not in started:
                arrived.clear()
                await arrived.wait()
            # A push may start the handler before CreateTask's reply is read: that counts as 0.
            samples.append(max(0.0, started[task.id] - returned) * 1000)
            await asyncio.sleep(0.005)
    await _stop(clients, pool, runs)
    return {
        "mode": "work stream" if stream else "long-poll ClaimTask",
        "tasks": tasks,
        "p50_ms": round(percentile(samples, 0.5), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
    }


async def measure(address: str, seconds: float) -> dict[str, Any]:
    # Pickups first: a lifecycle run leaves the producers' backlog pending, and a pickup measured
    # after it would wait behind that backlog.
    pickups = {
        "pickup_stream": await pickup(address, stream=True),
        "pickup_long_poll": await pickup(address, stream=False),
    }
    return {
        "lifecycle_stream": await lifecycle(address, seconds, stream=True),
        "lifecycle_long_poll": await lifecycle(address, seconds, stream=False),
        **pickups,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.address, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
