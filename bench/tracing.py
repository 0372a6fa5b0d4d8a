"""Scenario 5 of `python -m bench`: what tracing costs, and where that cost comes from.

Throughput with tracing off, on (every span exported), head-sampled and instrumented with nothing
sampled, side by side; then the server's CPU time per CreateTask in each mode (the same cost seen
from the server, whatever the load generator's own speed), and the OpenTelemetry SDK's own price of
one span and of its OTLP encoding, measured in this process: the floor tracing cannot go below on
this machine whatever the service does.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc

from bench.servers import claudebench_server, create_throughput, process
from claudebench.ports import free_port
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc

# Attributes of the same shape as a script span's (see ScriptExecutor).
SCRIPT_SPAN_ATTRIBUTES: dict[str, str | int] = {
    "db.system.name": "redis",
    "db.operation.name": "EVALSHA",
    "db.stored_procedure.name": "TASK_CREATE",
    "db.redis.script_sha": "0" * 40,
    "server.address": "127.0.0.1",
    "server.port": 6379,
}


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all threads (Linux /proc; None elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def create_many(address: str, count: int, in_flight: int = 16) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        numbers = iter(range(count))

        async def caller() -> None:
            for i in numbers:
                await stub.CreateTask(tasks_pb2.CreateTaskRequest(text=f"cpu {i}"))

        await asyncio.gather(*(caller() for _ in range(in_flight)))


async def cpu_per_call_us(address: str, pid: int, count: int, drain_s: float) -> float | None:
    """Server CPU µs per CreateTask over `count` calls, including the export that follows them."""
    before = process_cpu_seconds(pid)
    await create_many(address, count)
    await asyncio.sleep(drain_s)
    after = process_cpu_seconds(pid)
    if before is None or after is None:
        return None
    return round((after - before) / count * 1e6, 1)


def sdk_span_costs(spans: int = 4000) -> dict[str, float]:
    """µs the OpenTelemetry SDK spends on one span like a script span: created and ended with a
    batch processor (exporter discarding), and encoded to OTLP by the exporters' own encoder."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    kept: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, batch: Any) -> SpanExportResult:
            kept.extend(batch)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Keep(), max_queue_size=spans))
    tracer = provider.get_tracer("bench")
    started = time.perf_counter()
    for _ in range(spans):
        span = tracer.start_span(
            "EVALSHA TASK_CREATE", kind=trace.SpanKind.CLIENT, attributes=SCRIPT_SPAN_ATTRIBUTES
        )
        span.set_attribute("claudebench.script.result", "OK")
        span.end()
    create_us = (time.perf_counter() - started) / spans * 1e6
    provider.force_flush()
    started = time.perf_counter()
    encode_spans(kept).SerializeToString()
    encode_us = (time.perf_counter() - started) / len(kept) * 1e6
    provider.shutdown()
    return {"create_end_us": round(create_us, 1), "otlp_encode_us": round(encode_us, 1)}


def _rotations(names: list[str], rounds: int) -> list[list[str]]:
    """One order per round, each starting one further along: no variant always follows the one
    that exports every span (whose exporter may still be busy when the next round starts)."""
    return [names[r % len(names) :] + names[: r % len(names)] for r in range(rounds)]


async def tracing_overhead(redis_url: str, seconds: float, rounds: int = 4) -> dict[str, Any]:
    """CreateTask/s at 16 in flight on four servers side by side (tracing off, every span exported
    over OTLP/gRPC with the batch processor, a 10 % head sampler, nothing sampled), in alternation for
    `rounds` rounds (medians, so a noisy moment does not decide the ratio); then server CPU per
    call in each mode (medians of as many rounds), and the SDK's price per span."""
    otlp_port = free_port()
    exporting = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        # Export every second (default 5 s), so a server's backlog is gone before the next round.
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
    }
    # The sampler honours callers' sampled flags; the load generator sends none.
    sampled = {
        **exporting,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    # The gRPC instrumentation with nothing sampled: what its interceptor costs on its own.
    unsampled = {**exporting, "OTEL_TRACES_SAMPLER": "always_off"}
    variants = {"off": {}, "on": exporting, "sampled_10pct": sampled, "unsampled": unsampled}
    ports = {name: free_port() for name in variants}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    drain_s = 1.5  # lets an exporter finish, so it neither steals the next round's CPU nor escapes it
    with process(["-m", "bench.bare", "otlp", str(otlp_port)]), ExitStack() as stack:
        pids = {
            name: stack.enter_context(claudebench_server(redis_url, ports[name], env))
            for name, env in variants.items()
        }
        for order in _rotations(list(variants), rounds):
            for name in order:
                rates[name].append(await create_throughput(f"127.0.0.1:{ports[name]}", seconds))
                await asyncio.sleep(drain_s)
        calls = max(500, int(statistics.median(rates["off"]) * seconds))
        for order in _rotations(list(variants), rounds):
            for name in order:
                used = await cpu_per_call_us(f"127.0.0.1:{ports[name]}", pids[name], calls, drain_s)
                if used is not None:
                    cpu[name].append(used)
    median = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    out: dict[str, Any] = {
        "create_per_s_16_off": median["off"],
        "create_per_s_16_on": median["on"],
        "on_over_off": round(median["on"] / median["off"], 3),
        "create_per_s_16_sampled_10pct": median["sampled_10pct"],
        "sampled_over_off": round(median["sampled_10pct"] / median["off"], 3),
        "create_per_s_16_unsampled": median["unsampled"],
        "unsampled_over_off": round(median["unsampled"] / median["off"], 3),
        "rounds": rates,
        "sdk_per_span": sdk_span_costs(),
    }
    if all(cpu.values()):
        typical = {name: round(statistics.median(values), 1) for name, values in cpu.items()}
        out["server_cpu_us_per_call"] = typical
        sdk = out["sdk_per_span"]
        # A traced CreateTask makes two spans: the RPC's and its one script call's.
        out["sdk_create_over_off_cpu"] = round(2 * sdk["create_end_us"] / typical["off"], 3)
        out["sdk_floor_over_off_cpu"] = round(
            2 * (sdk["create_end_us"] + sdk["otlp_encode_us"]) / typical["off"], 3
        )
    return out
