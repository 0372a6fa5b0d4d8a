"""Validation of the task-lifecycle additions to v1 (queues, delays, deadlines, retries, ...).

A field the server does not honour yet is refused with INVALID_ARGUMENT, never accepted and dropped:
a client relying on it must learn at once that it has no effect here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from google.protobuf import duration_pb2, timestamp_pb2

from claudebench.api.codec import DEFAULT_QUEUE
from claudebench.api.validation import InvalidArgument, duration_ms
from claudebench.store.clock import wall_clock_ms
from claudebench.store.lifecycle import RetryPolicy
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


# run_at and delay reach at most this far ahead.
MAX_AHEAD_MS = 365 * 24 * 3600 * 1000
# The range of a valid google.protobuf.Timestamp (0001-01-01 to 9999-12-31).
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


@dataclass(frozen=True, slots=True)
class Start:
    """When a new task may run: run_at_ms (epoch ms) or delay_ms from now; neither = at once."""

    run_at_ms: int | None = None
    delay_ms: int | None = None


def timestamp_ms(value: timestamp_pb2.Timestamp, field: str) -> int:
    if not (_MIN_SECONDS <= value.seconds <= _MAX_SECONDS and 0 <= value.nanos <= 999_999_999):
        raise InvalidArgument(
            f"{field} is not a valid Timestamp: seconds must lie in years 1..9999 and nanos in 0..999,999,999"
        )
    return value.ToMilliseconds()


def positive_duration_ms(value: duration_pb2.Duration, field: str, maximum_ms: int) -> int:
    """A Duration that must be positive (at least 1 ms) and at most maximum_ms."""
    ms = duration_ms(value, field)
    if ms <= 0:
        raise InvalidArgument(f"{field} must be positive (at least 1 ms), not {ms} ms")
    if ms > maximum_ms:
        raise InvalidArgument(f"{field} is {ms} ms; the limit is {maximum_ms} ms")
    return ms


def start(request: pb.CreateTaskRequest) -> Start:
    """run_at (a time in the past means now) or delay; at most a year ahead."""
    which = request.WhichOneof("start")
    if which == "run_at":
        run_at = timestamp_ms(request.run_at, "run_at")
        if run_at - wall_clock_ms() > MAX_AHEAD_MS:
            raise InvalidArgument("run_at is more than a year ahead; the limit is 365 days from now")
        return Start(run_at_ms=run_at)
    if which == "delay":
        return Start(delay_ms=positive_duration_ms(request.delay, "delay", MAX_AHEAD_MS))
    return Start()


def timeout_ms(request: pb.CreateTaskRequest) -> int | None:
    """The task's own timeout (a positive Duration, at most a year), None when unset."""
    if not request.HasField("timeout"):
        return None
    return positive_duration_ms(request.timeout, "timeout", MAX_AHEAD_MS)


MAX_ATTEMPTS = 100
MAX_IDEMPOTENCY_KEY_BYTES = 200


def idempotency_key(request: pb.CreateTaskRequest) -> str | None:
    if not request.HasField("idempotency_key"):
        return None
    size = len(request.idempotency_key.encode())
    if not 1 <= size <= MAX_IDEMPOTENCY_KEY_BYTES:
        raise InvalidArgument(f"idempotency_key must be 1..{MAX_IDEMPOTENCY_KEY_BYTES} bytes, not {size}")
    return request.idempotency_key


def retry_policy(request: pb.CreateTaskRequest) -> RetryPolicy | None:
    """The task's RetryPolicy with the defaults filled in (max_attempts 0 = the server's default,
    left 0 for the store); None when unset."""
    if not request.HasField("retry"):
        return None
    r = request.retry
    if not 0 <= r.max_attempts <= MAX_ATTEMPTS:
        raise InvalidArgument(
            f"retry.max_attempts must be 1..{MAX_ATTEMPTS} (0: the default), not {r.max_attempts}"
        )
    defaults = RetryPolicy()
    initial = (
        positive_duration_ms(r.initial_backoff, "retry.initial_backoff", MAX_AHEAD_MS)
        if r.HasField("initial_backoff")
        else defaults.initial_backoff_ms
    )
    maximum = (
        positive_duration_ms(r.max_backoff, "retry.max_backoff", MAX_AHEAD_MS)
        if r.HasField("max_backoff")
        else max(defaults.max_backoff_ms, initial)
    )
    if maximum < initial:
        raise InvalidArgument(
            f"retry.max_backoff ({maximum} ms) must not be shorter than retry.initial_backoff ({initial} ms)"
        )
    multiplier = r.backoff_multiplier if r.HasField("backoff_multiplier") else defaults.multiplier
    if not (math.isfinite(multiplier) and 1 <= multiplier <= 1000):
        raise InvalidArgument(
            f"retry.backoff_multiplier must be at least 1 (and at most 1000), not {multiplier}"
        )
    jitter = r.jitter if r.HasField("jitter") else defaults.jitter
    if not 0 <= jitter <= 1:  # also refuses NaN
        raise InvalidArgument(f"retry.jitter must be within 0..1, not {jitter}")
    return RetryPolicy(r.max_attempts, initial, maximum, multiplier, jitter)


def refuse_unsupported_create(request: pb.CreateTaskRequest) -> None:
    """CreateTaskRequest fields of the lifecycle additions that this server does not honour yet."""
    if request.HasField("queue"):
        queue_name(request.queue)


def list_queue(request: pb.ListTasksRequest) -> None:
    """ListTasks.queue: every task is in the default queue, so filtering by it changes nothing."""
    if request.HasField("queue"):
        queue_name(request.queue)


def refuse_unsupported_register(request: system_pb2.RegisterRequest) -> None:
    queues(list(request.queues))
