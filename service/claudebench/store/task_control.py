"""Cancel, retry and progress reports of tasks (issue 17): a base class of TaskStore, so that
store/tasks.py keeps the original operations. One script call each."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from claudebench.scripts.results import ResultCode, ScriptResult
from claudebench.store.errors import DomainError, ok_payload
from claudebench.store.task_batches import TaskBatches, TaskSnapshot, _pairs

# Retries of a cancel (or idempotent create) whose holder (record) changed since it was read.
STALE_RETRIES = 5
# At most one PROGRESS event per task in this time (ms): a worker reporting 100 times a second
# appends 4 events a second; the task always holds the newest progress.
PROGRESS_EVENT_INTERVAL_MS = 250


@dataclass(frozen=True, slots=True)
class ProgressReply:
    task: TaskSnapshot
    # The task was cancelled while this worker held it: stop working on it.
    cancelled: bool


class TaskControl(TaskBatches):
    """CancelTask, RetryTask, ReportProgress and the idempotent CreateTask."""

    async def _create_idempotent(
        self, keys: dict[str, str], args: dict[str, str | int], metadata: list[str], idempotency_key: str
    ) -> TaskSnapshot:
        """TASK_CREATE_IDEMPOTENT with TASK_CREATE's keys and args: read the key's record, pass it,
        again if a concurrent create with the key changed it meanwhile."""
        record = self._keys.idempotency(idempotency_key)
        for _ in range(STALE_RETRIES):
            existing = cast(str | None, await self._client.get(record)) or ""
            result = await self._run(
                "TASK_CREATE_IDEMPOTENT",
                keys=keys
                | {
                    "idempotency": record,
                    "existing": self._keys.task(existing) if existing else keys["task"],
                },
                args=args
                | {
                    "idempotency_key": idempotency_key,
                    "window_ms": self._settings.idempotency_window_ms,
                    "expected_existing": existing,
                },
                extra_args=metadata,
            )
            if result.code is not ResultCode.STALE:
                snapshot: TaskSnapshot = json.loads(ok_payload(result))["task"]
                return snapshot
        raise DomainError(
            ResultCode.STALE, f"The idempotency key {idempotency_key!r} kept changing; retry the call"
        )

    async def cancel(self, task_id: str, reason: str) -> TaskSnapshot:
        k = self._keys
        for _ in range(STALE_RETRIES):
            assignee = cast(str | None, await self._client.hget(k.task(task_id), "assignedTo")) or ""

            async def call(queue: str, assignee: str = assignee) -> ScriptResult:
                return await self._run(
                    "TASK_CANCEL",
                    keys={
                        "task": k.task(task_id),
                        "pending": k.queue(queue, "pending"),
                        "due": k.due,
                        "idx_pending": k.status_index("pending"),
                        "idx_scheduled": k.status_index("scheduled"),
                        "idx_in_progress": k.status_index("in_progress"),
                        "idx_cancelled": k.status_index("cancelled"),
                        "held": k.held(assignee),
                        "events": k.events,
                        "finished_cancelled": k.finished("cancelled"),
                        "backlog": k.queue(queue, "backlog"),
                        "fair": k.queue(queue, "fair"),
                        "seq": k.task_seq,
                        "counts": k.queue_counts,
                    },
                    args={
                        "task_id": task_id,
                        "expected_assignee": assignee,
                        "now_ms": self._clock(),
                        "maxlen": self._settings.event_retention,
                        "reason": reason,
                        "queue": queue,
                    },
                )

            result = await self._with_queue(task_id, call)
            if result.code is not ResultCode.STALE:
                snapshot: TaskSnapshot = json.loads(ok_payload(result))
                return snapshot
        raise DomainError(
            ResultCode.STALE, f"Task {task_id} kept changing holder while being cancelled; retry the call"
        )

    async def retry(self, task_id: str, reset_attempts: bool) -> TaskSnapshot:
        k = self._keys

        async def call(queue: str) -> ScriptResult:
            return await self._run(
                "TASK_RETRY",
                keys={
                    "task": k.task(task_id),
                    "pending": k.queue(queue, "pending"),
                    "idx_pending": k.status_index("pending"),
                    "idx_failed": k.status_index("failed"),
                    "idx_cancelled": k.status_index("cancelled"),
                    "events": k.events,
                    "finished_failed": k.finished("failed"),
                    "finished_cancelled": k.finished("cancelled"),
                    "backlog": k.queue(queue, "backlog"),
                    "fair": k.queue(queue, "fair"),
                    "counts": k.queue_counts,
                },
                args={
                    "task_id": task_id,
                    "now_ms": self._clock(),
                    "maxlen": self._settings.event_retention,
                    "reset_attempts": int(reset_attempts),
                    "queue": queue,
                },
            )

        snapshot: TaskSnapshot = json.loads(ok_payload(await self._with_queue(task_id, call)))
        return snapshot

    async def progress(
        self, task_id: str, worker_id: str, progress: Mapping[str, str], extend_ms: int = 0
    ) -> ProgressReply:
        """Merge `progress` (keys to JSON-encoded values) into the held task, extend its lease."""
        k = self._keys
        result = await self._run(
            "TASK_PROGRESS",
            keys={"task": k.task(task_id), "leases": k.leases, "events": k.events},
            args={
                "task_id": task_id,
                "worker_id": worker_id,
                "now_ms": self._clock(),
                "maxlen": self._settings.event_retention,
                "extend_ms": extend_ms,
                "event_interval_ms": PROGRESS_EVENT_INTERVAL_MS,
            },
            extra_args=_pairs(progress),
        )
        reply = json.loads(ok_payload(result))
        return ProgressReply(reply["task"], bool(reply["cancelled"]))
