"""Task operations: one script call each (plus the reads that let every key be declared)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, cast

from claudebench.keys import ALL_TASK_STATUSES, DEFAULT_QUEUE, FINISHED_STATUSES, Keyspace
from claudebench.scripts.results import ResultCode, ScriptResult
from claudebench.store.errors import DomainError, ok_payload
from claudebench.store.ids import new_task_id
from claudebench.store.lifecycle import RetryPolicy
from claudebench.store.task_batches import (
    REPLY_ENVELOPE_BYTES,
    Completion,
    NewTask,
    TaskPage,
    TaskSnapshot,
    TaskStoreSettings,
    _pairs,
)
from claudebench.store.task_control import TaskControl

__all__ = [
    "REPLY_ENVELOPE_BYTES",
    "Completion",
    "NewTask",
    "TaskPage",
    "TaskSnapshot",
    "TaskStore",
    "TaskStoreSettings",
]

# Retries of an update/delete whose holder changed between the read and the script.
STALE_RETRIES = 5
# Task hashes read per round trip by a listing (it stops reading once its reply budget is spent).
LIST_READ_CHUNK = 50


class TaskStore(TaskControl):
    """Creates, claims, assigns, updates, completes, releases, deletes and lists tasks."""

    async def create(
        self,
        text: str,
        priority: int,
        metadata: Mapping[str, str],
        task_id: str | None = None,
        queue: str = DEFAULT_QUEUE,
        run_at_ms: int | None = None,
        delay_ms: int | None = None,
        timeout_ms: int | None = None,
        retry: RetryPolicy | None = None,
        idempotency_key: str | None = None,
    ) -> TaskSnapshot:
        """Create a pending task in `queue`, or a scheduled one when run_at_ms (or now + delay_ms)
        is in the future. `metadata` maps keys to JSON-encoded values. With an idempotency key, a
        create within the key's window returns the key's first task instead."""
        task_id = task_id or new_task_id()
        k = self._keys
        now = self._clock()
        new = NewTask(text, priority, metadata, task_id, run_at_ms, delay_ms, timeout_ms, retry)
        lifecycle = self._lifecycle_args(new, now)
        run_at = int(lifecycle["run_at"])
        keys = {
            "task": k.task(task_id),
            "pending": k.queue(queue, "pending"),
            "all_tasks": k.all_tasks,
            "idx_pending": k.status_index("pending"),
            "events": k.events,
            "seq": k.task_seq,
            "due": k.due,
            "idx_scheduled": k.status_index("scheduled"),
            "backlog": k.queue(queue, "backlog"),
            "fair": k.queue(queue, "fair"),
            "queue_all": k.queue(queue, "all"),
            "queues": k.queues,
            "counts": k.queue_counts,
            "config": k.queue(queue, "config"),
        }
        args: dict[str, str | int] = {
            "task_id": task_id,
            "text": text,
            "priority": priority,
            "now_ms": now,
            "maxlen": self._settings.event_retention,
            **lifecycle,
            **self._server_defaults(),
            "queue": queue,
        }
        if idempotency_key is None:
            result = await self._run("TASK_CREATE", keys=keys, args=args, extra_args=_pairs(metadata))
            snapshot = _snapshot(ok_payload(result))
        else:
            snapshot = await self._create_idempotent(keys, args, _pairs(metadata), idempotency_key)
        self._memory.remember([snapshot])
        self._note_due(run_at, now)
        return snapshot

    async def get(self, task_id: str) -> TaskSnapshot:
        snapshot = cast(TaskSnapshot, await self._client.hgetall(self._keys.task(task_id)))
        if not snapshot:
            raise DomainError(ResultCode.NOT_FOUND, f"Task {task_id} does not exist")
        return snapshot

    @property
    def reply_budget(self) -> int:
        """The bytes a reply's tasks (or events, or instances) may take."""
        return self._settings.reply_budget

    async def list_page(
        self,
        status: str | None,
        assigned_to: str | None,
        page_size: int,
        after_seq: int | None,
        queue: str | None = None,
        measure: Callable[[TaskSnapshot], int] = len,
        budget: int | None = None,
    ) -> TaskPage:
        """A page of tasks in creation order, read from one index (never a scan). `queue` is
        used alone (the caller refuses it combined with another filter). The page ends early (with
        a position to continue from) before the task whose `measure` (its bytes in the reply) would
        pass `budget`; the first task is always taken."""
        k = self._keys
        if queue is not None:
            index = k.queue(queue, "all")
        elif assigned_to is not None:
            index = k.held(assigned_to)
        elif status is not None:
            index = k.status_index(status)
        else:
            index = k.all_tasks
        budget = self._settings.reply_budget if budget is None else budget
        low = f"({after_seq}" if after_seq is not None else "-inf"
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zrange(index, low, "+inf", byscore=True, offset=0, num=page_size + 1, withscores=True)
            pipe.zcard(index)
            entries, total = await pipe.execute()
        page = entries[:page_size]
        next_after = int(page[-1][1]) if len(entries) > page_size else None
        tasks: list[TaskSnapshot] = []
        used = 0
        # In chunks: a page of large tasks stops being read once the budget is spent.
        for start in range(0, len(page), LIST_READ_CHUNK):
            chunk = page[start : start + LIST_READ_CHUNK]
            async with self._client.pipeline(transaction=False) as pipe:
                for task_id, _ in chunk:
                    pipe.hgetall(k.task(task_id))
                hashes = await pipe.execute()
            for snapshot in hashes:
                if not snapshot:
                    continue  # deleted between the two reads: left out rather than half-read
                size = measure(snapshot)
                if tasks and used + size > budget:
                    return TaskPage(tasks=tasks, next_after_seq=int(tasks[-1]["seq"]), total=int(total))
                tasks.append(snapshot)
                used += size
        return TaskPage(tasks=tasks, next_after_seq=next_after, total=int(total))

    def _queue_keys(self, queue: str, *parts: str) -> dict[str, str]:
        return {part: self._keys.queue(queue, part) for part in parts}

    async def assign(self, task_id: str, instance_id: str) -> TaskSnapshot:
        k = self._keys

        async def call(queue: str) -> ScriptResult:
            return await self._run(
                "TASK_ASSIGN",
                keys={
                    "task": k.task(task_id),
                    "instance": k.instance(instance_id),
                    "held": k.held(instance_id),
                    "idx_pending": k.status_index("pending"),
                    "idx_in_progress": k.status_index("in_progress"),
                    "events": k.events,
                    "queue_metrics": k.queue_metrics,
                    "leases": k.leases,
                    "seq": k.task_seq,
                    "counts": k.queue_counts,
                    **self._queue_keys(queue, "pending", "backlog", "fair", "config"),
                },
                args={
                    "task_id": task_id,
                    "instance_id": instance_id,
                    "now_ms": self._clock(),
                    "ttl_ms": self._settings.instance_ttl_ms,
                    "maxlen": self._settings.event_retention,
                    "queue": queue,
                },
            )

        return _snapshot(ok_payload(await self._with_queue(task_id, call)))

    async def update(
        self,
        task_id: str,
        text: str | None,
        priority: int | None,
        status: str | None,
        metadata: Mapping[str, str],
    ) -> TaskSnapshot:
        k = self._keys
        for _ in range(STALE_RETRIES):
            assignee = await self._assignee(task_id)

            async def call(queue: str, assignee: str = assignee) -> ScriptResult:
                return await self._run(
                    "TASK_UPDATE",
                    keys={
                        "task": k.task(task_id),
                        **_status_index_keys(k, ("failed", "cancelled")),
                        "held": k.held(assignee),
                        "events": k.events,
                        "seq": k.task_seq,
                        "counts": k.queue_counts,
                        **self._queue_keys(queue, "pending", "backlog", "fair"),
                    },
                    args={
                        "task_id": task_id,
                        "now_ms": self._clock(),
                        "maxlen": self._settings.event_retention,
                        "expected_assignee": assignee,
                        "text": text or "",
                        "priority": "" if priority is None else priority,
                        "status": status or "",
                        "queue": queue,
                        "metadata_max_bytes": self._settings.metadata_max_bytes,
                        "metadata_max_keys": self._settings.metadata_max_keys,
                    },
                    extra_args=_pairs(metadata),
                )

            result = await self._with_queue(task_id, call)
            if result.code is not ResultCode.STALE:
                return _snapshot(ok_payload(result))
        raise _contention(task_id)

    async def complete(
        self,
        task_id: str,
        worker_id: str,
        outcome: Literal["result", "error"],
        value: str,
        no_retry: bool = False,
    ) -> TaskSnapshot:
        """Finish a held task: `value` is the result as JSON text, or the error message (a retry
        when the task's policy has attempts left, unless no_retry)."""
        k = self._keys
        (retry,) = await self.retry_times([Completion(task_id, worker_id, outcome, value, no_retry)])
        result = await self._run(
            "TASK_COMPLETE",
            keys={
                "task": k.task(task_id),
                "held": k.held(worker_id),
                "instance": k.instance(worker_id),
                **self._finishing_keys(),
            },
            args={
                "task_id": task_id,
                "worker_id": worker_id,
                "now_ms": self._clock(),
                "maxlen": self._settings.event_retention,
                "outcome": outcome,
                "value": value,
                "retry_at": retry,
            },
        )
        snapshot = _snapshot(ok_payload(result))
        self._note_due(retry, 0)
        return snapshot

    async def release(self, task_id: str, worker_id: str, reason: str) -> TaskSnapshot:
        k = self._keys

        async def call(queue: str) -> ScriptResult:
            return await self._run(
                "TASK_RELEASE",
                keys={
                    "task": k.task(task_id),
                    "held": k.held(worker_id),
                    "idx_pending": k.status_index("pending"),
                    "idx_in_progress": k.status_index("in_progress"),
                    "events": k.events,
                    "counts": k.queue_counts,
                    **self._queue_keys(queue, "pending", "backlog", "fair"),
                },
                args={
                    "task_id": task_id,
                    "worker_id": worker_id,
                    "now_ms": self._clock(),
                    "maxlen": self._settings.event_retention,
                    "reason": reason,
                    "queue": queue,
                },
            )

        return _snapshot(ok_payload(await self._with_queue(task_id, call)))

    async def delete(self, task_id: str, force: bool = False) -> None:
        k = self._keys
        for _ in range(STALE_RETRIES):
            assignee = await self._assignee(task_id)

            async def call(queue: str, assignee: str = assignee) -> ScriptResult:
                return await self._run(
                    "TASK_DELETE",
                    keys={
                        "task": k.task(task_id),
                        "all_tasks": k.all_tasks,
                        **_status_index_keys(k, FINISHED_STATUSES),
                        "held": k.held(assignee),
                        "events": k.events,
                        "seq": k.task_seq,
                        "counts": k.queue_counts,
                        "queue_all": k.queue(queue, "all"),
                        **self._queue_keys(queue, "pending", "backlog", "fair"),
                    },
                    args={
                        "task_id": task_id,
                        "expected_assignee": assignee,
                        "now_ms": self._clock(),
                        "maxlen": self._settings.event_retention,
                        "force": int(force),
                        "queue": queue,
                    },
                )

            result = await self._with_queue(task_id, call)
            if result.code is not ResultCode.STALE:
                ok_payload(result)
                return
        raise _contention(task_id)

    async def _assignee(self, task_id: str) -> str:
        """The task's current holder as stored ('' for none or for a missing task)."""
        return cast(str | None, await self._client.hget(self._keys.task(task_id), "assignedTo")) or ""


def _status_index_keys(k: Keyspace, finished: Sequence[str]) -> dict[str, str]:
    """Every status index, the due index and the finished indexes of `finished`."""
    return (
        {f"idx_{status}": k.status_index(status) for status in ALL_TASK_STATUSES}
        | {"due": k.due}
        | {f"finished_{status}": k.finished(status) for status in finished}
    )


def _snapshot(payload: str) -> TaskSnapshot:
    snapshot: TaskSnapshot = json.loads(payload)
    return snapshot


def _contention(task_id: str) -> DomainError:
    return DomainError(
        ResultCode.STALE,
        f"Task {task_id} kept changing holder while being modified; retry the call",
    )
