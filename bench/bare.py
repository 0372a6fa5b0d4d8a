"""Ceiling servers, each in its own process: what grpc.aio alone does on this machine.

python -m bench.bare echo PORT | evalsha PORT REDIS_URL | stream PORT | fanout PORT | otlp PORT
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import redis.asyncio as aioredis

ECHO = "/bench.Bare/Echo"
EVALSHA = "/bench.Bare/Evalsha"
STREAM = "/bench.Bare/Stream"
# Fan-out: every Subscribe stream receives each key a Publish call carries (comma-separated), each
# as its own message of STREAM_MESSAGE's size: WatchTasks's shape with nothing of claudebench's.
SUBSCRIBE = "/bench.Bare/Subscribe"
PUBLISH = "/bench.Bare/Publish"
# About the size of a serialized TaskEvent with a small task.
STREAM_MESSAGE = b"x" * 300
SCRIPT = "return redis.call('INCR', KEYS[1])"


def _identity(data: bytes) -> bytes:
    return data


def unary_call(channel: grpc.aio.Channel, method: str) -> Callable[[int], Awaitable[bytes]]:
    """A client call of one of the unary ceilings (ECHO, EVALSHA), shaped for bench.load."""
    stub: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)

    async def call(_i: int) -> bytes:
        return await stub(b"ping")

    return call


class _Handlers(grpc.GenericRpcHandler):
    def __init__(self, redis_url: str | None) -> None:
        self._redis = aioredis.Redis.from_url(redis_url) if redis_url else None
        self._sha = ""
        self._subscribers: set[asyncio.Queue[bytes]] = set()

    async def load(self) -> None:
        if self._redis is not None:
            self._sha = await self._redis.script_load(SCRIPT)

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        if details.method == ECHO:
            return grpc.unary_unary_rpc_method_handler(self._echo, _identity, _identity)
        if details.method == EVALSHA:
            return grpc.unary_unary_rpc_method_handler(self._evalsha, _identity, _identity)
        if details.method == STREAM:
            return grpc.unary_stream_rpc_method_handler(self._stream, _identity, _identity)
        if details.method == SUBSCRIBE:
            return grpc.unary_stream_rpc_method_handler(self._subscribe, _identity, _identity)
        if details.method == PUBLISH:
            return grpc.unary_unary_rpc_method_handler(self._publish, _identity, _identity)
        return None

    async def _echo(self, request: bytes, context: Any) -> bytes:
        return request

    async def _evalsha(self, request: bytes, context: Any) -> bytes:
        assert self._redis is not None
        await self._redis.evalsha(self._sha, 1, "bench:bare", "")
        return request

    async def _stream(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        for _ in range(int(request.decode())):
            yield STREAM_MESSAGE

    async def _subscribe(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    async def _publish(self, request: bytes, context: Any) -> bytes:
        messages = [key.ljust(len(STREAM_MESSAGE)) for key in request.split(b",")]
        for queue in self._subscribers:
            for message in messages:
                queue.put_nowait(message)
        return b""


async def _serve_bare(port: int, redis_url: str | None) -> None:
    handlers = _Handlers(redis_url)
    await handlers.load()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handlers,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def _serve_otlp(port: int) -> None:
    """An OTLP trace receiver that accepts and discards, for the tracing-overhead scenario."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    class Sink(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request: Any, context: Any) -> Any:
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Sink(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "otlp":
        asyncio.run(_serve_otlp(port))
    else:
        asyncio.run(_serve_bare(port, sys.argv[3] if len(sys.argv) > 3 else None))


if __name__ == "__main__":
    main()
