"""`claudebench serve` as a separate process, for tests that kill or outlive servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def spawn_server(
    redis_url: str, port: int, env: Mapping[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server on 127.0.0.1:port and wait until its health service says SERVING."""
    command = [sys.executable, "-m", "claudebench", "serve", "--listen", f"127.0.0.1:{port}", "--no-http"]
    environment = {**os.environ, **env, "CLAUDEBENCH_REDIS_URL": redis_url}
    if log is None:
        process = subprocess.Popen(command, env=environment)
    else:
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_serving(process, port)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def wait_serving(process: subprocess.Popen[Any], port: int, timeout_s: float = 20) -> None:
    """Until the server on 127.0.0.1:port says SERVING; RuntimeError if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {port} did not start within {timeout_s} s")
            time.sleep(0.05)
