"""The task store's data classes and its batch operations (TASK_CREATE_BATCH, TASK_COMPLETE_BATCH):
a base class of TaskStore, so that store/tasks.py keeps the one-task operations."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

from claudebench.keys import DEFAULT_QUEUE
from claudebench.store.claims import ClaimStore
from claudebench.store.errors import ok_payload
from claudebench.store.ids import new_task_id
from claudebench.store.lifecycle import RetryPolicy, retry_at

TaskSnapshot = dict[str, str]
"""A task hash as stored (see claudebench.keys for its fields)."""


# Room left in a reply beyond its tasks (the other fields, gRPC framing): the reply budget is the
# message limit minus this.
REPLY_ENVELOPE_BYTES = 16 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TaskStoreSettings:
    event_retention: int = 100_000
    instance_ttl_ms: int = 30_000
    # The lease of a task created without a timeout (ms; 0 = none).
    default_timeout_ms: int = 0
    # Attempts of a task created without a retry policy (1 = no automatic retry).
    default_max_attempts: int = 1
    # How long an idempotency key names the task it created.
    idempotency_window_ms: int = 24 * 3600 * 1000
    # The bytes a reply's tasks may take: a claim or auto-assignment stops before a task that
    # would not fit (scripts bound each Task message with task_wire_bound, lib/task.lua).
    reply_budget: int = DEFAULT_MAX_MESSAGE_BYTES - REPLY_ENVELOPE_BYTES
    # Limits of a task's metadata after UpdateTask merges into it (those of one request's metadata).
    metadata_max_bytes: int = 64 * 1024
    metadata_max_keys: int = 256


@dataclass(frozen=True, slots=True)
class NewTask:
    text: str
    priority: int
    metadata: Mapping[str, str]
    task_id: str | None = None
    # When it may run (epoch ms, or a delay from the store's clock); neither: at once (PENDING).
    run_at_ms: int | None = None
    delay_ms: int | None = None
    timeout_ms: int | None = None
    retry: RetryPolicy | None = None
    queue: str = DEFAULT_QUEUE
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    task_id: str
    worker_id: str
    outcome: Literal["result", "error"]
    value: str
    # An error fails the task for good, whatever its retry policy.
    no_retry: bool = False


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[TaskSnapshot]
    next_after_seq: int | None
    total: int


class TaskBatches(ClaimStore):
    """Creates and completes many tasks in one script call each."""

    _settings: TaskStoreSettings
    # Jitter's randomness (tests pin it).
    _random: Callable[[], float] = staticmethod(random.random)
    # The earliest run_at of a scheduled task as the latest claim or creation saw it (epoch ms;
    # None: nothing scheduled). A claim at or after it promotes due tasks first. 0 at start: unknown.
    _next_due: int | None = 0

    def _note_due(self, run_at: int, now: int) -> None:
        """A task this server just scheduled for run_at: its next claim at or after it promotes it."""
        if run_at > now:
            self._next_due = run_at if self._next_due is None else min(self._next_due, run_at)

    async def retry_times(self, items: list[Completion]) -> list[int]:
        """Per completion, the retry_at its script takes: the time of the retry for an error on a
        task whose retry policy has attempts left (unless no_retry), else 0 (finish it)."""
        failing = [i for i, item in enumerate(items) if item.outcome == "error" and not item.no_retry]
        times = [0] * len(items)
        if not failing:
            return times
        async with self._client.pipeline(transaction=False) as pipe:
            for i in failing:
                pipe.hmget(self._keys.task(items[i].task_id), "retry", "attempts")
            rows = cast(list[list[str | None]], await pipe.execute())
        now = self._clock()
        for i, (policy, attempts) in zip(failing, rows, strict=True):
            times[i] = max(0, retry_at(policy, int(attempts or 0), now, self._random()))
        return times

    def _lifecycle_args(self, item: NewTask, now: int) -> dict[str, str | int]:
        """The lifecycle ARGV of a new task: run_at (epoch ms, 0 = now), timeout_ms, max_attempts
        and retry (policy JSON). An unset timeout or retry policy is -1 (max_attempts with retry
        ''): the script gives the task its queue's default, else the server's (_server_defaults)."""
        retry = item.retry
        if retry is not None and retry.max_attempts == 0:
            retry = dataclasses.replace(retry, max_attempts=self._settings.default_max_attempts)
        return {
            "run_at": now + item.delay_ms if item.delay_ms is not None else (item.run_at_ms or 0),
            "timeout_ms": -1 if item.timeout_ms is None else item.timeout_ms,
            "max_attempts": retry.max_attempts if retry else -1,
            "retry": retry.to_json() if retry and retry.max_attempts > 1 else "",
        }

    def _server_defaults(self) -> dict[str, str | int]:
        """The server's lease and retry policy for tasks that set neither and whose queue has none."""
        attempts = self._settings.default_max_attempts
        return {
            "default_timeout_ms": self._settings.default_timeout_ms,
            "default_max_attempts": attempts,
            "default_retry": RetryPolicy(attempts).to_json() if attempts > 1 else "",
        }

    async def create_many(self, items: list[NewTask]) -> list[TaskSnapshot]:
        """Create every task or none (TASK_CREATE_BATCH)."""
        k = self._keys
        now = self._clock()
        ids = [item.task_id or new_task_id() for item in items]
        args: list[str | int] = []
        keys: list[str] = []
        run_ats: list[int] = []
        for task_id, item in zip(ids, items, strict=True):
            lifecycle = self._lifecycle_args(item, now)
            run_ats.append(int(lifecycle["run_at"]))
            args += [task_id, item.text, item.priority, item.queue, *lifecycle.values(), len(item.metadata)]
            args += _pairs(item.metadata)
            keys.append(k.task(task_id))
            keys += [k.queue(item.queue, part) for part in ("pending", "backlog", "fair", "all", "config")]
        result = await self._run(
            "TASK_CREATE_BATCH",
            keys={
                "all_tasks": k.all_tasks,
                "idx_pending": k.status_index("pending"),
                "events": k.events,
                "seq": k.task_seq,
                "queues": k.queues,
                "due": k.due,
                "idx_scheduled": k.status_index("scheduled"),
                "counts": k.queue_counts,
            },
            args={"now_ms": now, "maxlen": self._settings.event_retention, **self._server_defaults()},
            extra_keys=keys,
            extra_args=args,
        )
        snapshots: list[TaskSnapshot] = json.loads(ok_payload(result))
        self._memory.remember(snapshots)
        self._note_due(min((r for r in run_ats if r > now), default=0), now)
        return snapshots

    def _finishing_keys(self) -> dict[str, str]:
        """The keys TASK_COMPLETE and TASK_COMPLETE_BATCH share: indexes, counters, events."""
        k = self._keys
        return {
            "idx_in_progress": k.status_index("in_progress"),
            "idx_completed": k.status_index("completed"),
            "idx_failed": k.status_index("failed"),
            "events": k.events,
            "queue_metrics": k.queue_metrics,
            "throughput": k.throughput,
            "counts": k.queue_counts,
            "idx_scheduled": k.status_index("scheduled"),
            "due": k.due,
            "finished_completed": k.finished("completed"),
            "finished_failed": k.finished("failed"),
        }

    async def complete_many(self, items: list[Completion]) -> list[TaskSnapshot]:
        """Record every completion or none (TASK_COMPLETE_BATCH)."""
        k = self._keys
        keys: list[str] = []
        args: list[str | int] = []
        retries = await self.retry_times(items)
        for item, retry in zip(items, retries, strict=True):
            keys += [k.task(item.task_id), k.held(item.worker_id), k.instance(item.worker_id)]
            args += [item.task_id, item.worker_id, item.outcome, item.value, retry]
        result = await self._run(
            "TASK_COMPLETE_BATCH",
            keys=self._finishing_keys(),
            args={
                "now_ms": self._clock(),
                "maxlen": self._settings.event_retention,
                "reply_budget": self._settings.reply_budget,
            },
            extra_keys=keys,
            extra_args=args,
        )
        snapshots: list[TaskSnapshot] = json.loads(ok_payload(result))
        self._note_due(min((r for r in retries if r), default=0), 0)
        return snapshots


def _pairs(metadata: Mapping[str, str]) -> list[str]:
    return [item for pair in metadata.items() for item in pair]
