"""Validation of the task-lifecycle additions to v1 (queues, delays, deadlines, retries, ...).

A field the server does not honour yet is refused with INVALID_ARGUMENT, never accepted and dropped:
a client relying on it must learn at once that it has no effect here.
"""

from __future__ import annotations

from claudebench.api.validation import InvalidArgument
from claudebench.keys import DEFAULT_QUEUE, QUEUE_NAME, RESERVED_QUEUE_NAMES
from claudebench.v1 import system_pb2
from claudebench.v1 import tasks_pb2 as pb

# The most queues one worker serves (and one claim spans).
MAX_QUEUES = 100


def not_supported(field: str, detail: str = "") -> InvalidArgument:
    return InvalidArgument(f"{field} is not supported yet{detail}; leave it unset")


def queue_name(value: str, field: str = "queue") -> str:
    """A valid queue name: 1..64 of [A-Za-z0-9._-], not one of the reserved names."""
    if not QUEUE_NAME.fullmatch(value):
        raise InvalidArgument(f"{field} {value[:80]!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    if value in RESERVED_QUEUE_NAMES:
        raise InvalidArgument(
            f"{field} {value!r} is reserved (its keys would alias others); choose another name"
        )
    return value


def queues(values: list[str], field: str = "queues") -> list[str]:
    """Valid, distinct queue names, at most MAX_QUEUES."""
    if len(values) > MAX_QUEUES:
        raise InvalidArgument(f"{field} names {len(values)} queues; at most {MAX_QUEUES}")
    names = [queue_name(value, f"{field}[{i}]") for i, value in enumerate(values)]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"{field} names a queue twice")
    return names


def refuse_unsupported_create(request: pb.CreateTaskRequest) -> None:
    """CreateTaskRequest fields of the lifecycle additions that this server does not honour yet."""
    start = request.WhichOneof("start")
    if start is not None:
        raise not_supported(start)
    if request.HasField("timeout"):
        raise not_supported("timeout")
    if request.HasField("retry"):
        raise not_supported("retry")
    if request.HasField("idempotency_key"):
        raise not_supported("idempotency_key")


def create_queue(request: pb.CreateTaskRequest) -> str:
    return queue_name(request.queue) if request.HasField("queue") else DEFAULT_QUEUE


def refuse_unsupported_claim(request: pb.ClaimTaskRequest) -> None:
    if request.HasField("wait") and (request.wait.seconds or request.wait.nanos):
        raise not_supported("wait (long-poll claims)")


def register_queues(request: system_pb2.RegisterRequest) -> list[str]:
    """The queues a worker serves (default: the default queue)."""
    return queues(list(request.queues)) or [DEFAULT_QUEUE]
