"""Requests that cannot be decoded answer INVALID_ARGUMENT, not UNKNOWN.

grpc.aio decodes a request with the handler's deserializer before any servicer code runs, and
reports a deserializer's exception as UNKNOWN with the exception's class in the message. Here every
unary request deserializer is wrapped so that a body that is not the request message (a corrupt
encoding, a string that is not UTF-8, nesting beyond protobuf's limit) becomes an `Undecodable`
request; the servicer methods (`guard.guarded`) and, for services that are not ours, a wrapper
installed here answer it with INVALID_ARGUMENT.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import grpc

# Set (True) on a behaviour that answers an Undecodable request itself (guard.guarded does).
ANSWERS_UNDECODABLE = "answers_undecodable"


class Undecodable:
    """A request body its method's deserializer refused."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _tolerant(method: str, deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return Undecodable(
                f"the {method} request could not be decoded: it is not a valid protobuf encoding of "
                "the request message (corrupt bytes, a string that is not UTF-8, or nesting deeper "
                "than protobuf allows)"
            )

    return parse


def _answering(behaviour: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
    """`behaviour`, answering an Undecodable request itself (for servicers that do not)."""
    if getattr(behaviour, ANSWERS_UNDECODABLE, False):
        return behaviour
    if streaming and inspect.isasyncgenfunction(behaviour):

        @functools.wraps(behaviour)
        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            async for response in behaviour(request, context):
                yield response

        return stream

    @functools.wraps(behaviour)
    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        # Also a server-streaming coroutine that writes to the context (health's Watch), and a
        # plain function (an unimplemented method of a generated base class, e.g. health's List).
        if isinstance(request, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        if not inspect.iscoroutinefunction(behaviour):
            try:
                return behaviour(request, context)
            except NotImplementedError:
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this method is not implemented")
        return await behaviour(request, context)

    return unary


def _screening(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    """A bidirectional-streaming `behaviour` whose request stream ends the call with
    INVALID_ARGUMENT at the first message that could not be decoded (server reflection)."""

    @functools.wraps(behaviour)
    async def stream(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async def screened() -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                yield request

        async for response in behaviour(screened(), context):
            yield response

    return stream


def tolerant_handler(
    method: str, handler: grpc.RpcMethodHandler[Any, Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler with a deserializer that never raises, for the asyncio servicers: unary
    and server-streaming requests are answered before the servicer runs; a bidirectional stream's
    messages as the servicer reads them."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _answering(handler.unary_unary, streaming=False),
            _tolerant(method, handler.request_deserializer),
            handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _answering(handler.unary_stream, streaming=True),
            _tolerant(method, handler.request_deserializer),
            handler.response_serializer,
        )
    if inspect.isasyncgenfunction(handler.stream_stream):
        return grpc.stream_stream_rpc_method_handler(
            _screening(handler.stream_stream),
            _tolerant(method, handler.request_deserializer),
            handler.response_serializer,
        )
    return handler


class TolerantRegistrar:
    """Stands in for the server in the generated `add_*Servicer_to_server` functions and registers
    their handlers with tolerant deserializers (once, at start: nothing is added per call)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        """Generated code calls this and then add_registered_method_handlers with the same
        handlers of one service: they are registered (tolerant) by the latter. Any other generic
        handler is passed on as it is."""
        passed = [h for h in handlers if not isinstance(h, grpc.ServiceRpcHandler)]
        if passed:
            self._server.add_generic_rpc_handlers(passed)

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        wrapped = {name: tolerant_handler(name, handler) for name, handler in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        self._server.add_registered_method_handlers(service, wrapped)
