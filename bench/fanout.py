"""Event fan-out latency: a publisher's call returning -> the event arriving at each subscriber.

The same measurement for WatchTasks (CreateTasks publishes) and for the bare grpc.aio fan-out
server of bench.bare (Publish), so a run reports claudebench against the ceiling of its shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from bench import bare, load
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc

# Event rates tried with 100 subscribers, to find the highest that keeps p99 within 10 ms here.
RATES = (10, 25, 50, 100)

# Publishes events numbered [first, first + count); returns their keys once the call returned.
Publish = Callable[[int, int], Awaitable[list[str]]]


async def measure(
    streams: list[Any],
    key_of: Callable[[Any], str],
    publish: Publish,
    events_per_s: float,
    seconds: float,
) -> dict[str, Any]:
    """Publish at `events_per_s` for `seconds` while every stream is read; latency per delivery.

    A batch every 20 ms (as fine as the event loop's timers keep on this machine; smaller batches
    would be bursts of their own), each sent on time whatever the previous one's latency.
    """
    returned: dict[str, float] = {}
    arrivals: list[tuple[str, float]] = []
    await asyncio.sleep(0.5)  # every stream open before the first event

    async def consume(stream: AsyncIterator[Any]) -> None:
        async for message in stream:
            arrivals.append((key_of(message), time.perf_counter()))

    consumers = [asyncio.create_task(consume(s)) for s in streams]
    per_batch = max(1, round(events_per_s / 50))
    started = time.perf_counter()
    published = 0
    while time.perf_counter() < started + seconds:
        keys = await publish(published, per_batch)
        now = time.perf_counter()
        for key in keys:
            returned[key] = now
        published += len(keys)
        await asyncio.sleep(max(0.0, started + published / events_per_s - time.perf_counter()))
    await asyncio.sleep(1.0)
    for stream in streams:
        stream.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    # An event can reach a subscriber before the publisher's reply reaches the publisher: that
    # delivery took no time after the call returned (0), and must not be left out.
    latencies = [max(0.0, at - returned[key]) * 1000 for key, at in arrivals if key in returned]
    return {
        "events_published": published,
        "events_per_s_offered": round(published / seconds, 1),
        "p50_ms": round(load.percentile(latencies, 0.5), 3) if latencies else None,
        "p99_ms": round(load.percentile(latencies, 0.99), 3) if latencies else None,
        "deliveries": len(latencies),
    }


async def watch_tasks(
    tasks: tasks_pb2_grpc.TaskServiceStub, subscribers: int, events_per_s: float, seconds: float
) -> dict[str, Any]:
    """CreateTasks returning -> its `created` events arriving at `subscribers` WatchTasks streams."""
    streams = [
        tasks.WatchTasks(tasks_pb2.WatchTasksRequest(types=[tasks_pb2.TASK_EVENT_TYPE_CREATED]))
        for _ in range(subscribers)
    ]

    async def publish(first: int, count: int) -> list[str]:
        reply = await tasks.CreateTasks(
            tasks_pb2.CreateTasksRequest(
                tasks=[tasks_pb2.CreateTaskRequest(text=f"ev {first + j}") for j in range(count)]
            )
        )
        return [task.id for task in reply.tasks]

    def key_of(response: Any) -> str:
        return str(response.event.task_id)

    return await measure(streams, key_of, publish, events_per_s, seconds)


async def bare_ceiling(address: str, subscribers: int, events_per_s: float, seconds: float) -> dict[str, Any]:
    """The same measurement on the bare grpc.aio fan-out server (python -m bench.bare fanout)."""
    async with grpc.aio.insecure_channel(address) as channel:
        subscribe: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(bare.SUBSCRIBE)
        publish_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(bare.PUBLISH)
        streams = [subscribe(b"") for _ in range(subscribers)]

        async def publish(first: int, count: int) -> list[str]:
            keys = [str(first + j) for j in range(count)]
            await publish_call(",".join(keys).encode())
            return keys

        def key_of(message: Any) -> str:
            return bytes(message).decode().strip()

        return await measure(streams, key_of, publish, events_per_s, seconds)
