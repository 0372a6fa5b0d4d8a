"""Task operations: one script call each (plus the reads that let every key be declared)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from claudebench.keys import ALL_TASK_STATUSES, FINISHED_STATUSES, Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError, ok_payload
from claudebench.store.ids import new_task_id
from claudebench.store.lifecycle import RetryPolicy, promote_due
from claudebench.store.task_batches import (
    Completion,
    NewTask,
    TaskPage,
    TaskSnapshot,
    TaskStoreSettings,
    _pairs,
)
from claudebench.store.task_control import TaskControl

__all__ = ["Completion", "NewTask", "TaskPage", "TaskSnapshot", "TaskStore", "TaskStoreSettings"]

# A claim reads this many candidates beyond the number it wants, so that concurrent claimers
# reading the same head of the queue still find enough pending tasks in one script call.
CLAIM_SLACK = 32
# Rounds of "read candidates, claim" before a claim returns what it has. Each round that comes back
# short lost races to claimers that did take tasks, so the queue is moving.
CLAIM_ROUNDS = 10
# At most this many candidate keys in one claim call (a long prefix of tasks denying the worker).
MAX_CANDIDATES = 1000
# Retries of an update/delete whose holder changed between the read and the script.
STALE_RETRIES = 5
# Capacities are at most 1000 (Register validates), so this means "up to the free capacity".
MAX_AUTO_ASSIGN = 1000


class TaskStore(TaskControl):
    """Creates, claims, assigns, updates, completes, releases, deletes and lists tasks."""

    # The head of the pending queue returned by the latest claim (ids): the next claim's candidates.
    _head_hint: Sequence[str] = ()

    async def create(
        self,
        text: str,
        priority: int,
        metadata: Mapping[str, str],
        task_id: str | None = None,
        run_at_ms: int | None = None,
        delay_ms: int | None = None,
        timeout_ms: int | None = None,
        retry: RetryPolicy | None = None,
        idempotency_key: str | None = None,
    ) -> TaskSnapshot:
        """Create a pending task, or a scheduled one when run_at_ms (or now + delay_ms) is in the
        future. `metadata` maps keys to JSON-encoded values. With an idempotency key, a create
        within the key's window returns the key's first task instead."""
        task_id = task_id or new_task_id()
        k = self._keys
        now = self._clock()
        new = NewTask(text, priority, metadata, task_id, run_at_ms, delay_ms, timeout_ms, retry)
        lifecycle = self._lifecycle_args(new, now)
        run_at = int(lifecycle["run_at"])
        keys = {
            "task": k.task(task_id),
            "pending": k.pending,
            "all_tasks": k.all_tasks,
            "idx_pending": k.status_index("pending"),
            "events": k.events,
            "seq": k.task_seq,
            "due": k.due,
            "idx_scheduled": k.status_index("scheduled"),
        }
        args: dict[str, str | int] = {
            "task_id": task_id,
            "text": text,
            "priority": priority,
            "now_ms": now,
            "maxlen": self._settings.event_retention,
            **lifecycle,
        }
        if idempotency_key is None:
            result = await self._run("TASK_CREATE", keys=keys, args=args, extra_args=_pairs(metadata))
            snapshot = _snapshot(ok_payload(result))
        else:
            snapshot = await self._create_idempotent(keys, args, _pairs(metadata), idempotency_key)
        self._note_due(run_at, now)
        return snapshot

    async def get(self, task_id: str) -> TaskSnapshot:
        snapshot = cast(TaskSnapshot, await self._client.hgetall(self._keys.task(task_id)))
        if not snapshot:
            raise DomainError(ResultCode.NOT_FOUND, f"Task {task_id} does not exist")
        return snapshot

    async def list_page(
        self,
        status: str | None,
        assigned_to: str | None,
        page_size: int,
        after_seq: int | None,
    ) -> TaskPage:
        """A page of tasks in creation order, read from one index (never a scan)."""
        k = self._keys
        if assigned_to is not None:
            index = k.held(assigned_to)
        elif status is not None:
            index = k.status_index(status)
        else:
            index = k.all_tasks
        low = f"({after_seq}" if after_seq is not None else "-inf"
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zrange(index, low, "+inf", byscore=True, offset=0, num=page_size + 1, withscores=True)
            pipe.zcard(index)
            entries, total = await pipe.execute()
        page = entries[:page_size]
        async with self._client.pipeline(transaction=False) as pipe:
            for task_id, _ in page:
                pipe.hgetall(k.task(task_id))
            hashes = await pipe.execute()
        # A task deleted between the two reads is left out rather than returned half-read.
        tasks = [h for h in hashes if h]
        next_after = int(page[-1][1]) if len(entries) > page_size else None
        return TaskPage(tasks=tasks, next_after_seq=next_after, total=int(total))

    async def claim(self, worker_id: str, max_tasks: int) -> list[TaskSnapshot]:
        """Claim up to max_tasks pending tasks for a live worker, highest priority first."""
        return await self._take(worker_id, max_tasks, auto_assign=False)

    async def auto_assign(self, worker_id: str) -> list[TaskSnapshot]:
        """Hand a registered worker pending tasks up to its free capacity (at registration)."""
        return await self._take(worker_id, MAX_AUTO_ASSIGN, auto_assign=True)

    async def _take(self, worker_id: str, max_tasks: int, auto_assign: bool) -> list[TaskSnapshot]:
        k = self._keys
        # One bounded promotion first when something is due, so a due task is claimable without
        # waiting for the scheduler; again (once) when a claim's reply says something is due (it
        # was scheduled by another replica since this one last looked).
        promoted = await self._promote_if_due()
        claimed: list[TaskSnapshot] = []
        denied_prefix = 0  # pending tasks at the head that this worker may not take (deny lists)
        # The head of the queue as the latest claim on this server left it: usually still right, and
        # it saves a ZRANGE round trip. The script re-checks every candidate and the queue order, so a
        # stale hint costs one more round, never a wrong or out-of-order claim.
        candidates = list(self._head_hint[: max_tasks + CLAIM_SLACK])
        for _ in range(CLAIM_ROUNDS):
            want = max_tasks - len(claimed)
            if not candidates:
                window = min(denied_prefix + want + CLAIM_SLACK, MAX_CANDIDATES)
                candidates = cast(list[str], await self._client.zrange(k.pending, 0, window - 1))
            # Called even with no candidate: it checks the worker (registered, live, not full).
            outcome = await self._claim_round(worker_id, want, auto_assign, candidates, bool(claimed))
            if outcome is None:
                break  # e.g. capacity taken meanwhile by a concurrent claim of the same worker
            self._head_hint = outcome["head"]
            claimed.extend(outcome["tasks"])
            if len(claimed) >= max_tasks or outcome["free"] == 0:
                break
            if not promoted and await self._promote_if_due():
                promoted, candidates = True, []
                continue
            if outcome["pending"] == 0:
                break
            if outcome["denied"] and not outcome["behind"]:
                denied_prefix = outcome["denied"]  # read past them (from the head: order holds)
                candidates = []
            else:
                # Behind (a task arrived ahead of the candidates) or taken by others: the head the
                # script just returned is the next round's candidates.
                candidates = outcome["head"][: max_tasks - len(claimed) + CLAIM_SLACK + denied_prefix]
        return claimed

    async def _promote_if_due(self) -> bool:
        """Promote one batch of due tasks if next_due has come; True when a batch ran."""
        now = self._clock()
        if self._next_due is None or now < self._next_due:
            return False
        outcome = await promote_due(
            self._run, self._client, self._keys, now, self._settings.event_retention, 1
        )
        self._next_due = outcome.next_due
        return True

    async def _claim_round(
        self, worker_id: str, want: int, auto_assign: bool, candidates: list[str], tolerate_refusal: bool
    ) -> dict[str, Any] | None:
        """One TASK_CLAIM (or AUTO_ASSIGN_TASKS) call; None when it refused after an earlier round
        took tasks (the refusal is raised when nothing was taken yet)."""
        k = self._keys
        args: dict[str, str | int] = {
            "worker_id": worker_id,
            "now_ms": self._clock(),
            "max_tasks": want,
            "maxlen": self._settings.event_retention,
        }
        if not auto_assign:
            args |= {"ttl_ms": self._settings.instance_ttl_ms, "event_type": "claimed"}
        result = await self._run(
            "AUTO_ASSIGN_TASKS" if auto_assign else "TASK_CLAIM",
            keys={
                "instance": k.instance(worker_id),
                "held": k.held(worker_id),
                "pending": k.pending,
                "idx_pending": k.status_index("pending"),
                "idx_in_progress": k.status_index("in_progress"),
                "events": k.events,
                "queue_metrics": k.queue_metrics,
                "leases": k.leases,
                **({} if auto_assign else {"due": k.due}),
            },
            args=args,
            extra_keys=[k.task(t) for t in candidates],
            extra_args=candidates,
        )
        if not result.ok and tolerate_refusal:
            return None
        reply = cast(dict[str, Any], json.loads(ok_payload(result)))
        if "next_due" in reply:
            self._next_due = None if reply["next_due"] is None else int(reply["next_due"])
        return reply

    async def assign(self, task_id: str, instance_id: str) -> TaskSnapshot:
        k = self._keys
        result = await self._run(
            "TASK_ASSIGN",
            keys={
                "task": k.task(task_id),
                "instance": k.instance(instance_id),
                "held": k.held(instance_id),
                "pending": k.pending,
                "idx_pending": k.status_index("pending"),
                "idx_in_progress": k.status_index("in_progress"),
                "events": k.events,
                "queue_metrics": k.queue_metrics,
                "leases": k.leases,
            },
            args={
                "task_id": task_id,
                "instance_id": instance_id,
                "now_ms": self._clock(),
                "ttl_ms": self._settings.instance_ttl_ms,
                "maxlen": self._settings.event_retention,
            },
        )
        return _snapshot(ok_payload(result))

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
            result = await self._run(
                "TASK_UPDATE",
                keys={
                    "task": k.task(task_id),
                    "pending": k.pending,
                    **_status_index_keys(k, ("failed", "cancelled")),
                    "held": k.held(assignee),
                    "events": k.events,
                },
                args={
                    "task_id": task_id,
                    "now_ms": self._clock(),
                    "maxlen": self._settings.event_retention,
                    "expected_assignee": assignee,
                    "text": text or "",
                    "priority": "" if priority is None else priority,
                    "status": status or "",
                },
                extra_args=_pairs(metadata),
            )
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
                "idx_in_progress": k.status_index("in_progress"),
                "idx_completed": k.status_index("completed"),
                "idx_failed": k.status_index("failed"),
                "events": k.events,
                "queue_metrics": k.queue_metrics,
                "throughput": k.throughput,
                "instance": k.instance(worker_id),
                "idx_scheduled": k.status_index("scheduled"),
                "due": k.due,
                "finished_completed": k.finished("completed"),
                "finished_failed": k.finished("failed"),
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
        result = await self._run(
            "TASK_RELEASE",
            keys={
                "task": k.task(task_id),
                "held": k.held(worker_id),
                "pending": k.pending,
                "idx_pending": k.status_index("pending"),
                "idx_in_progress": k.status_index("in_progress"),
                "events": k.events,
            },
            args={
                "task_id": task_id,
                "worker_id": worker_id,
                "now_ms": self._clock(),
                "maxlen": self._settings.event_retention,
                "reason": reason,
            },
        )
        return _snapshot(ok_payload(result))

    async def delete(self, task_id: str, force: bool = False) -> None:
        k = self._keys
        for _ in range(STALE_RETRIES):
            assignee = await self._assignee(task_id)
            result = await self._run(
                "TASK_DELETE",
                keys={
                    "task": k.task(task_id),
                    "pending": k.pending,
                    "all_tasks": k.all_tasks,
                    **_status_index_keys(k, FINISHED_STATUSES),
                    "held": k.held(assignee),
                    "events": k.events,
                },
                args={
                    "task_id": task_id,
                    "expected_assignee": assignee,
                    "now_ms": self._clock(),
                    "maxlen": self._settings.event_retention,
                    "force": int(force),
                },
            )
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
