"""Which failures the Python Worker retries (with backoff) and which end it."""

from __future__ import annotations

import grpc

# Failures a deployment causes (restarts, failovers, blips): retried. Anything else is a
# configuration or programming error and ends run().
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        # Not registered / declared offline: register again, then reconnect.
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


class StreamEnded(ConnectionError):
    """The Work stream ended (the server closed it or the call broke)."""


def retriable_call(exc: BaseException) -> bool:
    """For a unary call: transient, except a refusal (the task is no longer ours)."""
    refused = isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.FAILED_PRECONDITION
    return transient(exc) and not refused


def transient(exc: BaseException) -> bool:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in TRANSIENT
    return isinstance(exc, ConnectionError | TimeoutError)
