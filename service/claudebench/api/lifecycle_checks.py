"""Validation of the task-lifecycle additions to v1 (queues, delays, deadlines, retries, ...).

A field the server does not honour yet is refused with INVALID_ARGUMENT, never accepted and dropped:
a client relying on it must learn at once that it has no effect here.
"""

from __future__ import annotations

import re

from claudebench.api.codec import DEFAULT_QUEUE
from claudebench.api.validation import InvalidArgument
from claudebench.v1 import system_pb2
from claudebench.v1 import tasks_pb2 as pb

_QUEUE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def not_supported(field: str, detail: str = "") -> InvalidArgument:
    return InvalidArgument(f"{field} is not supported yet{detail}; leave it unset")


def queue_name(value: str, field: str = "queue") -> str:
    """A valid queue name; only the default queue exists until named queues are built."""
    if not _QUEUE.fullmatch(value):
        raise InvalidArgument(f"{field} {value[:80]!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    if value != DEFAULT_QUEUE:
        raise not_supported(f"{field} {value!r}", f" (only the {DEFAULT_QUEUE!r} queue exists)")
    return value


def queues(values: list[str], field: str = "queues") -> list[str]:
    return [queue_name(value, f"{field}[{i}]") for i, value in enumerate(values)]


def refuse_unsupported_create(request: pb.CreateTaskRequest) -> None:
    """CreateTaskRequest fields of the lifecycle additions that this server does not honour yet."""
    if request.HasField("queue"):
        queue_name(request.queue)
    start = request.WhichOneof("start")
    if start is not None:
        raise not_supported(start)
    if request.HasField("timeout"):
        raise not_supported("timeout")
    if request.HasField("retry"):
        raise not_supported("retry")
    if request.HasField("idempotency_key"):
        raise not_supported("idempotency_key")


def list_queue(request: pb.ListTasksRequest) -> None:
    """ListTasks.queue: every task is in the default queue, so filtering by it changes nothing."""
    if request.HasField("queue"):
        queue_name(request.queue)


def refuse_unsupported_register(request: system_pb2.RegisterRequest) -> None:
    queues(list(request.queues))
