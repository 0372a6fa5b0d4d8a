"""Task operations: one script call each (plus the reads that let every key be declared)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from claudebench.keys import TASK_STATUSES, Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.base import Store
from claudebench.store.errors import DomainError, ok_payload
from claudebench.store.ids import new_task_id

TaskSnapshot = dict[str, str]
"""A task hash as stored (see claudebench.keys for its fields)."""

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
# Task hashes read per round trip by a listing (it stops reading once its reply budget is spent).
LIST_READ_CHUNK = 50
# Capacities are at most 1000 (Register validates), so this means "up to the free capacity".
MAX_AUTO_ASSIGN = 1000


# Room left in a reply beyond its tasks (the other fields, gRPC framing): the reply budget is the
# message limit minus this.
REPLY_ENVELOPE_BYTES = 16 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TaskStoreSettings:
    event_retention: int = 100_000
    instance_ttl_ms: int = 30_000
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


@dataclass(frozen=True, slots=True)
class Completion:
    task_id: str
    worker_id: str
    outcome: Literal["result", "error"]
    value: str


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[TaskSnapshot]
    next_after_seq: int | None
    total: int


class TaskStore(Store[TaskStoreSettings]):
    """Creates, claims, assigns, updates, completes, releases, deletes and lists tasks."""

    # The head of the pending queue returned by the latest claim (ids): the next claim's candidates.
    _head_hint: Sequence[str] = ()

    async def create(
        self,
        text: str,
        priority: int,
        metadata: Mapping[str, str],
        task_id: str | None = None,
    ) -> TaskSnapshot:
        """Create a pending task. `metadata` maps keys to JSON-encoded values."""
        task_id = task_id or new_task_id()
        k = self._keys
        result = await self._run(
            "TASK_CREATE",
            keys={
                "task": k.task(task_id),
                "pending": k.pending,
                "all_tasks": k.all_tasks,
                "idx_pending": k.status_index("pending"),
                "events": k.events,
                "seq": k.task_seq,
            },
            args={
                "task_id": task_id,
                "text": text,
                "priority": priority,
                "now_ms": self._clock(),
                "maxlen": self._settings.event_retention,
            },
            extra_args=_pairs(metadata),
        )
        return _snapshot(ok_payload(result))

    async def create_many(self, items: list[NewTask]) -> list[TaskSnapshot]:
        """Create every task or none (TASK_CREATE_BATCH)."""
        k = self._keys
        ids = [item.task_id or new_task_id() for item in items]
        args: list[str | int] = []
        for task_id, item in zip(ids, items, strict=True):
            args += [task_id, item.text, item.priority, len(item.metadata), *_pairs(item.metadata)]
        result = await self._run(
            "TASK_CREATE_BATCH",
            keys={
                "pending": k.pending,
                "all_tasks": k.all_tasks,
                "idx_pending": k.status_index("pending"),
                "events": k.events,
                "seq": k.task_seq,
            },
            args={"now_ms": self._clock(), "maxlen": self._settings.event_retention},
            extra_keys=[k.task(task_id) for task_id in ids],
            extra_args=args,
        )
        snapshots: list[TaskSnapshot] = json.loads(ok_payload(result))
        return snapshots

    async def complete_many(self, items: list[Completion]) -> list[TaskSnapshot]:
        """Record every completion or none (TASK_COMPLETE_BATCH)."""
        k = self._keys
        keys: list[str] = []
        args: list[str | int] = []
        for item in items:
            keys += [k.task(item.task_id), k.held(item.worker_id), k.instance(item.worker_id)]
            args += [item.task_id, item.worker_id, item.outcome, item.value]
        result = await self._run(
            "TASK_COMPLETE_BATCH",
            keys={
                "idx_in_progress": k.status_index("in_progress"),
                "idx_completed": k.status_index("completed"),
                "idx_failed": k.status_index("failed"),
                "events": k.events,
                "queue_metrics": k.queue_metrics,
                "throughput": k.throughput,
            },
            args={
                "now_ms": self._clock(),
                "maxlen": self._settings.event_retention,
                "reply_budget": self._settings.reply_budget,
            },
            extra_keys=keys,
            extra_args=args,
        )
        snapshots: list[TaskSnapshot] = json.loads(ok_payload(result))
        return snapshots

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
        measure: Callable[[TaskSnapshot], int] = len,
        budget: int | None = None,
    ) -> TaskPage:
        """A page of tasks in creation order, read from one index (never a scan). The page ends
        early (with a position to continue from) before the task whose `measure` (its bytes in
        the reply) would pass `budget`; the first task is always taken."""
        k = self._keys
        if assigned_to is not None:
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

    async def claim(self, worker_id: str, max_tasks: int) -> list[TaskSnapshot]:
        """Claim up to max_tasks pending tasks for a live worker, highest priority first."""
        return await self._take(worker_id, max_tasks, auto_assign=False)

    async def auto_assign(self, worker_id: str) -> list[TaskSnapshot]:
        """Hand a registered worker pending tasks up to its free capacity (at registration)."""
        return await self._take(worker_id, MAX_AUTO_ASSIGN, auto_assign=True)

    async def _take(self, worker_id: str, max_tasks: int, auto_assign: bool) -> list[TaskSnapshot]:
        k = self._keys
        claimed: list[TaskSnapshot] = []
        budget = self._settings.reply_budget
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
            outcome = await self._claim_round(worker_id, want, auto_assign, candidates, bool(claimed), budget)
            if outcome is None:
                break  # e.g. capacity taken meanwhile by a concurrent claim of the same worker
            self._head_hint = outcome["head"]
            claimed.extend(outcome["tasks"])
            budget -= int(outcome["bytes"])
            if (
                len(claimed) >= max_tasks
                or outcome["free"] == 0
                or outcome["pending"] == 0
                or outcome["full"]
            ):
                break
            if outcome["denied"] and not outcome["behind"]:
                denied_prefix = outcome["denied"]  # read past them (from the head: order holds)
                candidates = []
            else:
                # Behind (a task arrived ahead of the candidates) or taken by others: the head the
                # script just returned is the next round's candidates.
                candidates = outcome["head"][: max_tasks - len(claimed) + CLAIM_SLACK + denied_prefix]
        return claimed

    async def _claim_round(
        self,
        worker_id: str,
        want: int,
        auto_assign: bool,
        candidates: list[str],
        tolerate_refusal: bool,
        budget: int,
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
        args["reply_budget"] = budget
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
            },
            args=args,
            extra_keys=[k.task(t) for t in candidates],
            extra_args=candidates,
        )
        if not result.ok and tolerate_refusal:
            return None
        return cast(dict[str, Any], json.loads(ok_payload(result)))

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
                    **_status_index_keys(k),
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
                    "metadata_max_bytes": self._settings.metadata_max_bytes,
                    "metadata_max_keys": self._settings.metadata_max_keys,
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
    ) -> TaskSnapshot:
        """Finish a held task: `value` is the result as JSON text, or the error message."""
        k = self._keys
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
            },
            args={
                "task_id": task_id,
                "worker_id": worker_id,
                "now_ms": self._clock(),
                "maxlen": self._settings.event_retention,
                "outcome": outcome,
                "value": value,
            },
        )
        return _snapshot(ok_payload(result))

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
                    **_status_index_keys(k),
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


def _status_index_keys(k: Keyspace) -> dict[str, str]:
    return {f"idx_{status}": k.status_index(status) for status in TASK_STATUSES}


def _pairs(metadata: Mapping[str, str]) -> list[str]:
    return [item for pair in metadata.items() for item in pair]


def _snapshot(payload: str) -> TaskSnapshot:
    snapshot: TaskSnapshot = json.loads(payload)
    return snapshot


def _contention(task_id: str) -> DomainError:
    return DomainError(
        ResultCode.STALE,
        f"Task {task_id} kept changing holder while being modified; retry the call",
    )
