"""The one table from script result codes to gRPC status codes."""

from __future__ import annotations

import grpc

from claudebench.scripts.results import ResultCode

STATUS_FOR_CODE: dict[ResultCode, grpc.StatusCode] = {
    ResultCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ResultCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ResultCode.INSTANCE_NOT_REGISTERED: grpc.StatusCode.FAILED_PRECONDITION,
    ResultCode.INSTANCE_OFFLINE: grpc.StatusCode.FAILED_PRECONDITION,
    ResultCode.AT_CAPACITY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ResultCode.NOT_PENDING: grpc.StatusCode.FAILED_PRECONDITION,
    ResultCode.DENIED: grpc.StatusCode.FAILED_PRECONDITION,
    ResultCode.NOT_HELD: grpc.StatusCode.FAILED_PRECONDITION,
    ResultCode.ALREADY_FINISHED: grpc.StatusCode.FAILED_PRECONDITION,
    ResultCode.INVALID_TRANSITION: grpc.StatusCode.FAILED_PRECONDITION,
    # A concurrent change won every retry: the client may simply call again.
    ResultCode.STALE: grpc.StatusCode.ABORTED,
    # PreToolUse answers these as allow=false with the reason (a decision, not a failure); the
    # statuses apply only where a caller raises them.
    ResultCode.CIRCUIT_OPEN: grpc.StatusCode.UNAVAILABLE,
    ResultCode.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ResultCode.NOT_SUBSCRIBED: grpc.StatusCode.FAILED_PRECONDITION,
    ResultCode.INVALID_CONFIG: grpc.StatusCode.INVALID_ARGUMENT,
    # The stores retry these with the keys the script named; they reach a client only when the
    # task or worker kept changing queues, which a call again resolves.
    ResultCode.QUEUES_CHANGED: grpc.StatusCode.ABORTED,
    ResultCode.WRONG_QUEUE: grpc.StatusCode.ABORTED,
}
