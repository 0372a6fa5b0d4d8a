"""Validation of the task-lifecycle additions to v1 (queues, delays, deadlines, retries, ...).

A field the server does not honour yet is refused with INVALID_ARGUMENT, never accepted and dropped:
a client relying on it must learn at once that it has no effect here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from google.protobuf import duration_pb2, timestamp_pb2

from claudebench.api.validation import InvalidArgument, duration_ms
from claudebench.keys import DEFAULT_QUEUE, QUEUE_NAME, RESERVED_QUEUE_NAMES
from claudebench.store.clock import wall_clock_ms
from claudebench.store.lifecycle import RetryPolicy
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
    return policy_from_proto(request.retry, "retry")


def policy_from_proto(r: pb.RetryPolicy, field: str) -> RetryPolicy:
    """A validated RetryPolicy message (`field` names it in messages), defaults filled in."""
    if not 0 <= r.max_attempts <= MAX_ATTEMPTS:
        raise InvalidArgument(
            f"{field}.max_attempts must be 1..{MAX_ATTEMPTS} (0: the default), not {r.max_attempts}"
        )
    defaults = RetryPolicy()
    initial = (
        positive_duration_ms(r.initial_backoff, f"{field}.initial_backoff", MAX_AHEAD_MS)
        if r.HasField("initial_backoff")
        else defaults.initial_backoff_ms
    )
    maximum = (
        positive_duration_ms(r.max_backoff, f"{field}.max_backoff", MAX_AHEAD_MS)
        if r.HasField("max_backoff")
        else max(defaults.max_backoff_ms, initial)
    )
    if maximum < initial:
        raise InvalidArgument(
            f"{field}.max_backoff ({maximum} ms) must not be shorter than "
            f"{field}.initial_backoff ({initial} ms)"
        )
    multiplier = r.backoff_multiplier if r.HasField("backoff_multiplier") else defaults.multiplier
    if not (math.isfinite(multiplier) and 1 <= multiplier <= 1000):
        raise InvalidArgument(
            f"{field}.backoff_multiplier must be at least 1 (and at most 1000), not {multiplier}"
        )
    jitter = r.jitter if r.HasField("jitter") else defaults.jitter
    if not 0 <= jitter <= 1:  # also refuses NaN
        raise InvalidArgument(f"{field}.jitter must be within 0..1, not {jitter}")
    return RetryPolicy(r.max_attempts, initial, maximum, multiplier, jitter)


def refuse_unsupported_create(request: pb.CreateTaskRequest) -> None:
    """CreateTaskRequest fields of the lifecycle additions that this server does not honour yet."""


def create_queue(request: pb.CreateTaskRequest) -> str:
    return queue_name(request.queue) if request.HasField("queue") else DEFAULT_QUEUE


def register_queues(request: system_pb2.RegisterRequest) -> list[str]:
    """The queues a worker serves (default: the default queue)."""
    return queues(list(request.queues)) or [DEFAULT_QUEUE]
