"""Latency and throughput of an async call, measured in the driver process."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Call = Callable[[int], Awaitable[Any]]


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float
    p999_ms: float
    calls: int


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(call: Call, seconds: float, warmup: int = 50) -> Latency:
    """One call in flight at a time for `seconds`, after a warm-up."""
    for i in range(warmup):
        await call(-1 - i)
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
        i += 1
    return Latency(
        p50_ms=round(statistics.median(samples), 3),
        p99_ms=round(percentile(samples, 0.99), 3),
        p999_ms=round(percentile(samples, 0.999), 3),
        calls=len(samples),
    )


async def throughput(call: Call, in_flight: int, seconds: float) -> float:
    """Calls per second with `in_flight` callers looping for `seconds` (after a short warm-up)."""
    counter = iter(range(10**12))
    stop = False
    done = 0

    async def caller() -> None:
        nonlocal done
        while not stop:
            await call(next(counter))
            done += 1

    workers = [asyncio.create_task(caller()) for _ in range(in_flight)]
    await asyncio.sleep(min(0.5, seconds / 4))  # warm-up
    start_count, started = done, time.perf_counter()
    await asyncio.sleep(seconds)
    completed, elapsed = done - start_count, time.perf_counter() - started
    stop = True
    await asyncio.gather(*workers, return_exceptions=True)
    return round(completed / elapsed, 1)


async def unary_figures(call: Call, seconds: float) -> dict[str, float]:
    """Latency at 1 in flight and throughput at 16: what a unary ceiling is measured by."""
    lat = await latency(call, seconds)
    return {
        "p50_ms": lat.p50_ms,
        "p99_ms": lat.p99_ms,
        "calls_per_s_1": round(lat.calls / seconds, 1),
        "calls_per_s_16": await throughput(call, 16, seconds),
    }
