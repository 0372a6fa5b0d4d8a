"""Claims over a worker's queues (TASK_CLAIM, AUTO_ASSIGN_TASKS), and the queue each task is in.

A claim reads candidates from the head of each queue's pending ZSET (or reuses the heads the latest
claim on this server returned) and passes them, with every queue's keys, to one script call that
re-checks them: the script takes tasks across the queues by priority, then age, each queue strictly
in its order, honouring pauses, concurrency caps and rate limits.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from claudebench.keys import DEFAULT_QUEUE, Keyspace
from claudebench.redis_connect import RedisClient
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.base import Store
from claudebench.store.clock import Clock, wall_clock_ms
from claudebench.store.errors import DomainError, ok_payload
from claudebench.store.lifecycle import promote_due

TaskSnapshot = dict[str, str]

# A claim reads this many candidates per queue beyond the number it wants, so that concurrent
# claimers reading the same head of a queue still find enough pending tasks in one script call.
CLAIM_SLACK = 32
# Rounds of "read candidates, claim" that take nothing before a claim returns what it has. Each
# round that comes back short lost races to claimers that did take tasks, so the queues are moving.
CLAIM_ROUNDS = 10
# At most this many candidate keys per queue in one claim call (a long prefix of denying tasks).
MAX_CANDIDATES = 1000
# Capacities are at most 1000 (Register validates), so this means "up to the free capacity".
MAX_AUTO_ASSIGN = 1000
# How many ids of each queue's head a claim reply carries: fewer when a claim spans many queues.
HEAD_HINT = 64
# Task -> queue guesses remembered per store (the scripts check them; a wrong guess costs a retry).
QUEUE_MEMORY = 10_000


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """Tasks handed over, when a queue closed by its rate limit opens again (ms, 0 = none), and
    how many tasks the queues had pending at the last claim call (a claim that took none while
    some were pending was held back: paused, capped, rate limited, or the tasks deny the worker)."""

    tasks: list[TaskSnapshot] = field(default_factory=list)
    open_at_ms: int = 0
    pending: int = 0


class QueueMemory:
    """Bounded memory of which queue a task is in, and which queues a worker registered for."""

    def __init__(self) -> None:
        self._tasks: OrderedDict[str, str] = OrderedDict()
        self.workers: dict[str, list[str]] = {}

    def task(self, task_id: str) -> str:
        return self._tasks.get(task_id, DEFAULT_QUEUE)

    def remember(self, snapshots: Sequence[TaskSnapshot]) -> None:
        for snapshot in snapshots:
            queue = snapshot.get("queue")
            if queue and queue != DEFAULT_QUEUE:
                self._tasks[snapshot["id"]] = queue
                self._tasks.move_to_end(snapshot["id"])
                if len(self._tasks) > QUEUE_MEMORY:
                    self._tasks.popitem(last=False)

    def correct(self, task_id: str, queue: str) -> None:
        self._tasks[task_id] = queue

    def worker(self, worker_id: str, queues: list[str]) -> None:
        """Remember a worker's registered queues (forgetting all past QUEUE_MEMORY workers: a
        forgotten worker's next claim learns them again from QUEUES_CHANGED)."""
        if len(self.workers) >= QUEUE_MEMORY:
            self.workers.clear()
        self.workers[worker_id] = queues


class ClaimStore(Store[Any]):
    """The claim path of TaskStore (see its docstring)."""

    def __init__(
        self,
        executor: ScriptExecutor,
        client: RedisClient,
        keys: Keyspace,
        settings: Any,
        clock: Clock = wall_clock_ms,
    ) -> None:
        super().__init__(executor, client, keys, settings, clock)
        # The head of each queue's pending ZSET as the latest claim left it: the next candidates.
        self._heads: dict[str, list[str]] = {}
        self._memory = QueueMemory()
        # The earliest run_at of a scheduled task as the latest claim or creation saw it (epoch ms;
        # None: nothing scheduled). A claim at or after it promotes due tasks first. 0: unknown.
        self._next_due: int | None = 0

    def now_ms(self) -> int:
        """The store's clock (epoch ms): what ClaimResult.open_at_ms is measured against."""
        return self._clock()

    async def claim(self, worker_id: str, max_tasks: int, queues: Sequence[str] = ()) -> list[TaskSnapshot]:
        """Claim up to max_tasks pending tasks of `queues` (empty = the worker's registered ones)
        for a live worker: highest priority first, then oldest, across the queues."""
        return (await self.claim_from(worker_id, max_tasks, queues)).tasks

    async def claim_from(self, worker_id: str, max_tasks: int, queues: Sequence[str] = ()) -> ClaimResult:
        """claim(), also saying when a queue closed by its rate limit opens again."""
        return await self._take(worker_id, max_tasks, list(queues), auto_assign=False)

    async def auto_assign(self, worker_id: str, queues: Sequence[str]) -> list[TaskSnapshot]:
        """Hand a registered worker pending tasks of its queues up to its free capacity."""
        self._memory.worker(worker_id, list(queues))
        return (await self._take(worker_id, MAX_AUTO_ASSIGN, [], auto_assign=True)).tasks

    async def _take(
        self, worker_id: str, max_tasks: int, explicit: list[str], auto_assign: bool
    ) -> ClaimResult:
        # One bounded promotion first when something is due, so a due task is claimable without
        # waiting for the scheduler; again (once) when a claim's reply says something is due (it
        # was scheduled by another replica since this one last looked).
        promoted = await self._promote_if_due()
        claimed: list[TaskSnapshot] = []
        open_at = pending = 0
        # The bytes the reply's tasks may still take: a round stops before a task that would not
        # fit (full), and the claim returns what it has.
        budget = self._settings.reply_budget
        queues = explicit or self._memory.workers.get(worker_id, [DEFAULT_QUEUE])
        # Candidates per queue: the heads the latest claim on this server left (usually still
        # right, and it saves a read); the script re-checks each, so a stale hint costs a round.
        candidates = {q: self._heads.get(q, [])[: max_tasks + CLAIM_SLACK] for q in queues}
        denied: dict[str, int] = {}
        idle_rounds = 0
        while idle_rounds < CLAIM_ROUNDS:
            idle_rounds += 1
            want = max_tasks - len(claimed)
            await self._read_heads(candidates, denied, want)
            outcome = await self._claim_round(
                worker_id, want, auto_assign, bool(explicit), candidates, bool(claimed), budget
            )
            if outcome is None:
                break  # e.g. capacity taken meanwhile by a concurrent claim of the same worker
            if "registered" in outcome:  # the worker's queues changed: claim from those
                queues = outcome["registered"]
                self._memory.worker(worker_id, queues)
                candidates = {q: [] for q in queues}
                continue
            self._heads.update(outcome["heads"])
            claimed.extend(outcome["tasks"])
            if outcome["tasks"]:
                # A round that took tasks does not count: e.g. a fairness key's next task becomes
                # a candidate only once its turn was taken (one per key and round).
                idle_rounds = 0
            open_at, pending = outcome["open_at"], int(outcome["pending"])
            budget -= int(outcome["bytes"])
            if len(claimed) >= max_tasks or outcome["free"] == 0 or outcome["full"]:
                break
            if not promoted and await self._promote_if_due():
                promoted, candidates = True, {q: [] for q in queues}
                continue
            if outcome["pending"] == 0:
                break
            if not outcome["behind"] and not outcome["more"]:
                break  # every queue is empty, paused or at its limits
            if outcome["denied"] and not outcome["behind"]:
                # Read past the tasks that deny this worker (from the head: order holds).
                denied = {q: denied.get(q, 0) + outcome["denied"] for q in queues}
                candidates = {q: [] for q in queues}
            else:
                candidates = {
                    q: outcome["heads"].get(q, [])[
                        : max_tasks - len(claimed) + CLAIM_SLACK + denied.get(q, 0)
                    ]
                    for q in queues
                }
        self._memory.remember(claimed)
        return ClaimResult(claimed, int(open_at), pending)

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

    async def _read_heads(self, candidates: dict[str, list[str]], denied: dict[str, int], want: int) -> None:
        """Fill in the candidates of queues that have none (one pipelined read)."""
        empty = [q for q, ids in candidates.items() if not ids]
        if not empty:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for q in empty:
                window = min(denied.get(q, 0) + want + CLAIM_SLACK, MAX_CANDIDATES)
                pipe.zrange(self._keys.queue(q, "pending"), 0, window - 1)
            heads = await pipe.execute()
        for q, ids in zip(empty, heads, strict=True):
            candidates[q] = cast(list[str], ids)

    async def _claim_round(
        self,
        worker_id: str,
        want: int,
        auto_assign: bool,
        explicit: bool,
        candidates: dict[str, list[str]],
        tolerate_refusal: bool,
        budget: int,
    ) -> dict[str, Any] | None:
        """One TASK_CLAIM (or AUTO_ASSIGN_TASKS) call; None when it refused after an earlier round
        took tasks (the refusal is raised when nothing was taken yet)."""
        k = self._keys
        queue_keys: list[str] = []
        queue_args: list[str | int] = []
        task_keys: list[str] = []
        ids: list[str | int] = []
        for q, cands in candidates.items():
            queue_keys += [k.queue(q, part) for part in ("pending", "backlog", "fair", "config", "rate")]
            queue_args += [q, len(cands)]
            task_keys += [k.task(t) for t in cands]
            ids += cands
        args: dict[str, str | int] = {
            "worker_id": worker_id,
            "now_ms": self._clock(),
            "max_tasks": want,
            "maxlen": self._settings.event_retention,
            "head_size": HEAD_HINT if len(candidates) <= 4 else 16,
            "nqueues": len(candidates),
            "reply_budget": budget,
        }
        if not auto_assign:
            args |= {
                "ttl_ms": self._settings.instance_ttl_ms,
                "event_type": "claimed",
                "explicit": int(explicit),
            }
        result = await self._run(
            "AUTO_ASSIGN_TASKS" if auto_assign else "TASK_CLAIM",
            keys={
                "instance": k.instance(worker_id),
                "held": k.held(worker_id),
                "idx_pending": k.status_index("pending"),
                "idx_in_progress": k.status_index("in_progress"),
                "events": k.events,
                "queue_metrics": k.queue_metrics,
                "seq": k.task_seq,
                "counts": k.queue_counts,
                "leases": k.leases,
                **({} if auto_assign else {"due": k.due}),
            },
            args=args,
            extra_keys=queue_keys + task_keys,
            extra_args=queue_args + ids,
        )
        if result.code is ResultCode.QUEUES_CHANGED:
            return {"registered": json.loads(result.payload)}
        if not result.ok and tolerate_refusal:
            return None
        reply = cast(dict[str, Any], json.loads(ok_payload(result)))
        if "next_due" in reply:
            self._next_due = None if reply["next_due"] is None else int(reply["next_due"])
        return reply

    async def _with_queue(self, task_id: str, call: Any) -> Any:
        """Run `call(queue)` with the queue the task is believed to be in, and once more with the
        task's real queue when the script says the guess was wrong."""
        queue = self._memory.task(task_id)
        for _ in range(3):
            result = await call(queue)
            if result.code is not ResultCode.WRONG_QUEUE:
                return result
            queue = result.payload
            self._memory.correct(task_id, queue)
        raise DomainError(ResultCode.WRONG_QUEUE, f"Task {task_id} kept changing queue; retry the call")
