"""A server interceptor that records every RPC's duration and final status in a histogram."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import metrics

# A string: grpc.RpcMethodHandler is generic only in the type stubs, not at run time.
HandlerContinuation = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]


def _status(context: grpc.aio.ServicerContext[Any, Any], failed: bool) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "UNKNOWN" if failed else "OK"


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Times unary and server-streaming calls (a stream is timed until it ends)."""

    def __init__(self, duration: metrics.Histogram) -> None:
        self._duration = duration

    async def intercept_service(
        self, continuation: HandlerContinuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        labels = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        record = self._duration.record

        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started, failed = time.perf_counter(), True
                try:
                    response = await inner(request, context)
                    failed = False
                    return response
                finally:
                    elapsed = (time.perf_counter() - started) * 1000
                    record(elapsed, {**labels, "rpc.grpc.status_code": _status(context, failed)})

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            inner_gen: Any = handler.unary_stream

            async def yielding(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                started, failed = time.perf_counter(), True
                try:
                    async for response in inner_gen(request, context):
                        yield response
                    failed = False
                finally:
                    elapsed = (time.perf_counter() - started) * 1000
                    record(elapsed, {**labels, "rpc.grpc.status_code": _status(context, failed)})

            return grpc.unary_stream_rpc_method_handler(
                yielding,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
