"""The processes a benchmark starts (ceiling servers, claudebench servers) and the CreateTask load
several scenarios share."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from bench import load
from claudebench.processes import stop_processes
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc


@contextmanager
def process(args: list[str], env: dict[str, str] | None = None, ready: str = "ready") -> Iterator[int]:
    """A child process that prints `ready` once it is up; yields its pid."""
    child = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    reader: threading.Thread | None = None
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 30
        for raw in child.stdout:
            if ready in raw.decode():
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args} did not start")
        else:
            raise RuntimeError(f"{args} exited (status {child.wait()}) before it was ready")
        # Keep reading its output, so a chatty child never blocks on a full pipe.
        reader = threading.Thread(target=child.stdout.read, daemon=True)
        reader.start()
        yield child.pid
    finally:
        stop_processes([child])
        if reader is not None:
            reader.join(timeout=5)  # the pipe is at its end once the child is gone
        if child.stdout is not None:
            child.stdout.close()


@contextmanager
def claudebench_server(
    redis_url: str,
    port: int,
    env: dict[str, str] | None = None,
    namespace: str | None = None,
    http_port: int | None = None,
) -> Iterator[int]:
    args = ["-m", "claudebench", "serve", "--listen", f"127.0.0.1:{port}", "--redis-url", redis_url]
    # Several servers at once: none takes the dashboard's default port; a free one when asked for.
    args += ["--no-http"] if http_port is None else ["--http-listen", f"127.0.0.1:{http_port}"]
    if namespace is not None:
        args += ["--namespace", namespace]
    with process(
        args, env={"CLAUDEBENCH_LOG_LEVEL": "INFO", **(env or {})}, ready="claudebench serving on"
    ) as pid:
        yield pid


async def create_throughput(address: str, seconds: float, connections: int = 1) -> float:
    """CreateTask/s at 16 in flight, spread over `connections` separate TCP connections."""
    # A local subchannel pool per channel: otherwise channels to one address share a connection.
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    try:
        stubs = [tasks_pb2_grpc.TaskServiceStub(c) for c in channels]

        async def call(i: int) -> Any:
            return await stubs[i % connections].CreateTask(tasks_pb2.CreateTaskRequest(text=f"t {i}"))

        return await load.throughput(call, 16, seconds)
    finally:
        for channel in channels:
            await channel.close()
