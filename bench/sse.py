"""The dashboard's Server-Sent Events beside WatchTasks: 100 subscribers at 100 events/s on one
server process, p50/p99 delivery latency (CreateTasks returning -> the event arriving) and the
server's CPU time per delivery, both measured in the same run on the same server.

`python -m bench.sse [--seconds S]` runs this alone and adds it to the newest bench/results/*.json
and BENCHMARKS.md; `python -m bench` runs it with everything else.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench import fanout
from bench.servers import claudebench_server
from bench.tracing import process_cpu_seconds
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.ports import free_port
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc

SUBSCRIBERS = 100
EVENTS_PER_S = 100


class SseStream:
    """One /api/v1/events subscriber as the dashboard reads it: yields each task event's task id."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url
        self._response: aiohttp.ClientResponse | None = None
        self.ready = asyncio.Event()

    async def open(self) -> None:
        self._response = await self._session.get(self._url, timeout=aiohttp.ClientTimeout(total=None))
        self._response.raise_for_status()
        self.ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._events()

    async def _events(self) -> AsyncIterator[str]:
        assert self._response is not None
        content = self._response.content
        while True:
            try:
                block = (await content.readuntil(b"\n\n")).decode()
            except (aiohttp.ClientError, asyncio.IncompleteReadError, ValueError):
                return
            if "\nevent: task\n" not in f"\n{block}":
                continue
            data = next(line[6:] for line in block.splitlines() if line.startswith("data: "))
            yield str(json.loads(data)["taskId"])

    def cancel(self) -> None:
        if self._response is not None:
            self._response.close()


async def _with_cpu(pid: int, run: Any) -> dict[str, Any]:
    before = process_cpu_seconds(pid)
    result: dict[str, Any] = await run
    after = process_cpu_seconds(pid)
    if before is not None and after is not None and result["deliveries"]:
        result["server_cpu_us_per_delivery"] = round((after - before) / result["deliveries"] * 1e6, 1)
        result["server_cpu_s"] = round(after - before, 2)
    return result


async def sse_events(
    http_base: str,
    tasks: tasks_pb2_grpc.TaskServiceStub,
    subscribers: int,
    events_per_s: float,
    seconds: float,
) -> dict[str, Any]:
    """CreateTasks returning -> its `created` events arriving at `subscribers` SSE streams."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        url = f"{http_base}/api/v1/events?types=TASK_EVENT_TYPE_CREATED"
        streams = [SseStream(session, url) for _ in range(subscribers)]
        await asyncio.gather(*(s.open() for s in streams))

        async def publish(first: int, count: int) -> list[str]:
            reply = await tasks.CreateTasks(
                tasks_pb2.CreateTasksRequest(
                    tasks=[tasks_pb2.CreateTaskRequest(text=f"sse {first + j}") for j in range(count)]
                )
            )
            return [task.id for task in reply.tasks]

        return await fanout.measure(streams, str, publish, events_per_s, seconds)


async def sse_vs_watch(
    redis_url: str, seconds: float, subscribers: int = SUBSCRIBERS, events_per_s: float = EVENTS_PER_S
) -> dict[str, Any]:
    """Both transports on one fresh server process, WatchTasks first, then SSE."""
    port, http_port = free_port(), free_port()
    with claudebench_server(redis_url, port, http_port=http_port) as pid:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            tasks = tasks_pb2_grpc.TaskServiceStub(channel)
            watch = await _with_cpu(pid, fanout.watch_tasks(tasks, subscribers, events_per_s, seconds))
            sse = await _with_cpu(
                pid, sse_events(f"http://127.0.0.1:{http_port}", tasks, subscribers, events_per_s, seconds)
            )
    return {"subscribers": subscribers, "events_per_s": events_per_s, "watch_tasks": watch, "sse": sse}


def main() -> None:
    from bench.report import write_report

    parser = argparse.ArgumentParser(prog="python -m bench.sse", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis:
            return await sse_vs_watch(redis.url, args.seconds)

    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    measured = {**asyncio.run(run()), "seconds": args.seconds, "date": date}
    print(json.dumps(measured, indent=2))
    newest = max((p for p in args.results.glob("*.json")), default=None)
    if newest is not None:
        results = json.loads(newest.read_text())
        results["sse"] = measured
        newest.write_text(json.dumps(results, indent=2) + "\n")
        write_report(results, Path(__file__).parent.parent / "BENCHMARKS.md")


if __name__ == "__main__":
    main()
