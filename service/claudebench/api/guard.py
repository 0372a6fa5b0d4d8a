"""The last line of every RPC: expected outcomes, bad input, Redis faults and bugs each become one
precise gRPC status. Nothing escapes as UNKNOWN."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import grpc
from redis import exceptions as redis_errors

from claudebench.api.decoding import ANSWERS_UNDECODABLE, Undecodable
from claudebench.api.status import STATUS_FOR_CODE
from claudebench.api.validation import InvalidArgument
from claudebench.redis_connect import REDIS_FAULTS
from claudebench.store.errors import DomainError

log = logging.getLogger(__name__)

S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
R = TypeVar("R")  # Resp for unary RPCs, None for server-streaming ones (they write to the context)
Handler = Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[R]]

# Replies Redis gives while it cannot serve for now (loading, failing over, busy with a script).
_TRANSIENT_REPLIES = ("LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


def redis_fault_status(exc: Exception) -> tuple[grpc.StatusCode, str] | None:
    """The status for a Redis fault, or None when the fault is a bug of ours (INTERNAL)."""
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return grpc.StatusCode.UNAVAILABLE, f"Redis is unavailable ({exc}); retry with backoff"
    text = str(exc)
    if isinstance(exc, redis_errors.ClusterDownError | redis_errors.TryAgainError):
        # A primary failed and its replica is not promoted yet, or a slot is being migrated.
        return (
            grpc.StatusCode.UNAVAILABLE,
            f"Redis Cluster cannot serve this namespace right now ({text}); retry with backoff",
        )
    if isinstance(exc, redis_errors.RedisClusterException) and "same" not in text:
        # No node reachable, or a slot with no primary (the client's own checks); a cross-slot
        # call ("keys ... do not hash to the same slot") is a bug of ours and stays INTERNAL.
        return grpc.StatusCode.UNAVAILABLE, f"Redis Cluster is unavailable ({text}); retry with backoff"
    if text.startswith("OOM"):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, "Redis is out of memory (maxmemory reached)"
    if text.startswith(_TRANSIENT_REPLIES):
        return (
            grpc.StatusCode.UNAVAILABLE,
            f"Redis cannot serve right now ({text}); retry with backoff",
        )
    return None


def guarded(method: Handler[S, Req, Resp, R]) -> Handler[S, Req, Resp, R]:
    """Wrap a servicer method with the error mapping of this module."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> R:
        try:
            if isinstance(request, Undecodable):
                raise InvalidArgument(request.message)
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            code, message = failure_status(exc, method.__name__)
            await context.abort(code, message)

    setattr(wrapper, ANSWERS_UNDECODABLE, True)
    return wrapper


def failure_status(exc: Exception, method: str) -> tuple[grpc.StatusCode, str]:
    """The one status for anything a servicer method raised."""
    if isinstance(exc, InvalidArgument):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, DomainError):
        return STATUS_FOR_CODE[exc.code], exc.message
    if isinstance(exc, REDIS_FAULTS):
        mapped = redis_fault_status(exc)
        if mapped is not None:
            return mapped
        log.error("Redis rejected a call of %s", method, exc_info=exc)
    else:
        log.error("bug while serving %s", method, exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal error (logged by the server)"


StreamHandler = Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncGenerator[Resp, None]]


def guarded_stream(method: StreamHandler[S, Req, Resp]) -> StreamHandler[S, Req, Resp]:
    """The same mapping for a server-streaming method written as an async generator."""

    @functools.wraps(method)
    async def wrapper(
        self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> AsyncGenerator[Resp, None]:
        try:
            if isinstance(request, Undecodable):
                raise InvalidArgument(request.message)
            async for response in method(self, request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            code, message = failure_status(exc, method.__name__)
            await context.abort(code, message)

    setattr(wrapper, ANSWERS_UNDECODABLE, True)
    return wrapper
