"""The task lifecycle's periodic work (docs/lifecycle.md): promotion of due SCHEDULED tasks, in
bounded batches, each one script call over ids read just before from an index."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import astuple, dataclass
from typing import cast

from claudebench.keys import DEFAULT_QUEUE, Keyspace
from claudebench.redis_connect import RedisClient
from claudebench.scripts.results import ScriptResult
from claudebench.store.base import Store
from claudebench.store.errors import ok_payload

# A store's script runner (ScriptExecutor.run).
Runner = Callable[..., Awaitable[ScriptResult]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A task's retry policy (docs/lifecycle.md): attempts allowed and the backoff between them."""

    max_attempts: int = 1
    initial_backoff_ms: int = 1_000
    max_backoff_ms: int = 300_000
    multiplier: float = 2.0
    jitter: float = 0.2

    def to_json(self) -> str:
        return json.dumps(
            {
                "maxAttempts": self.max_attempts,
                "initialBackoffMs": self.initial_backoff_ms,
                "maxBackoffMs": self.max_backoff_ms,
                "multiplier": self.multiplier,
                "jitter": self.jitter,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> RetryPolicy:
        raw = json.loads(text)
        return cls(
            int(raw["maxAttempts"]),
            int(raw["initialBackoffMs"]),
            int(raw["maxBackoffMs"]),
            float(raw["multiplier"]),
            float(raw["jitter"]),
        )

    def backoff_ms(self, attempt: int, unit_random: float) -> int:
        """The wait before retry number `attempt` (1 = after the first failure): initial *
        multiplier^(attempt-1), capped at max_backoff, then spread by ±jitter (unit_random in [0, 1))."""
        base = min(float(self.max_backoff_ms), self.initial_backoff_ms * self.multiplier ** (attempt - 1))
        spread = base * self.jitter * (2 * unit_random - 1)
        return max(0, round(base + spread))


def retry_at(policy_json: str | None, attempts: int, now_ms: int, unit_random: float) -> int:
    """What a failed attempt leads to, as the scripts take it: the epoch ms of the retry (> 0), 0
    for a task without a retry policy (today's failover rule applies), -1 when no attempt is left."""
    if not policy_json:
        return 0
    policy = RetryPolicy.from_json(policy_json)
    if attempts >= policy.max_attempts:
        return -1
    return now_ms + max(1, policy.backoff_ms(max(1, attempts), unit_random))


# Due tasks promoted per script call, and per scheduler tick at most this many calls.
PROMOTE_BATCH = 200
EXPIRE_BATCH = 100
MAX_BATCHES = 10


def queue_keys(keys: Keyspace, queue: str) -> list[str]:
    """The keys of a queue that taking a task into it touches: pending, backlog, fair."""
    return [keys.queue(queue, part) for part in ("pending", "backlog", "fair")]


async def queues_of(client: RedisClient, keys: Keyspace, ids: list[str]) -> list[str]:
    """The queue of each task (one pipelined read; a missing task reads as the default queue)."""
    async with client.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.hget(keys.task(task_id), "queue")
        return [q or DEFAULT_QUEUE for q in await pipe.execute()]


@dataclass(frozen=True, slots=True)
class Promotion:
    promoted: int
    skipped: int
    # The earliest run_at still in the due index (epoch ms), None when nothing is scheduled.
    next_due: int | None


async def promote_due_batch(
    run: Runner,
    client: RedisClient,
    keys: Keyspace,
    now_ms: int,
    maxlen: int,
    limit: int = PROMOTE_BATCH,
) -> Promotion:
    """One TASK_PROMOTE_DUE call over up to `limit` tasks due at now_ms (earliest first); none when
    nothing is due (then only the reads)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.zrange(keys.due, "-inf", now_ms, byscore=True, offset=0, num=limit)
        pipe.zrange(keys.due, 0, 0, withscores=True)
        due, first = await pipe.execute()
    ids = cast(list[str], due)
    if not ids:
        return Promotion(0, 0, int(first[0][1]) if first else None)
    queues = await queues_of(client, keys, ids)
    task_keys: list[str] = []
    task_args: list[str | int] = []
    for task_id, queue in zip(ids, queues, strict=True):
        task_keys += [keys.task(task_id), *queue_keys(keys, queue)]
        task_args += [task_id, queue]
    result = await run(
        "TASK_PROMOTE_DUE",
        keys={
            "due": keys.due,
            "counts": keys.queue_counts,
            "idx_scheduled": keys.status_index("scheduled"),
            "idx_pending": keys.status_index("pending"),
            "events": keys.events,
        },
        args={"now_ms": now_ms, "maxlen": maxlen},
        extra_keys=task_keys,
        extra_args=task_args,
    )
    reply = json.loads(ok_payload(result))
    next_due = reply["next_due"]
    return Promotion(
        int(reply["promoted"]), int(reply["skipped"]), None if next_due is None else int(next_due)
    )


async def promote_due(
    run: Runner,
    client: RedisClient,
    keys: Keyspace,
    now_ms: int,
    maxlen: int,
    max_batches: int = MAX_BATCHES,
) -> Promotion:
    """Promote what is due at now_ms, batch after batch while batches come back full (bounded)."""
    promoted = skipped = 0
    outcome = Promotion(0, 0, None)
    for _ in range(max_batches):
        outcome = await promote_due_batch(run, client, keys, now_ms, maxlen)
        promoted += outcome.promoted
        skipped += outcome.skipped
        if outcome.next_due is None or outcome.next_due > now_ms:
            break
    return Promotion(promoted, skipped, outcome.next_due)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished tasks of one status are kept (ms; 0 = forever) and how many at most (0 =
    no cap)."""

    status: str
    keep_ms: int
    max_count: int = 0


DEFAULT_RETENTION = (
    Retention("completed", 24 * 3600 * 1000),
    Retention("failed", 7 * 24 * 3600 * 1000),
    Retention("cancelled", 7 * 24 * 3600 * 1000),
)


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    event_retention: int = 100_000
    max_failovers: int = 3
    retention: tuple[Retention, ...] = DEFAULT_RETENTION


@dataclass(frozen=True, slots=True)
class Expiry:
    expired: int
    requeued: int
    scheduled: int
    failed: int
    dropped: int
    skipped: int


class LifecycleStore(Store[LifecycleSettings]):
    """The scheduler's jobs over the task lifecycle; each takes the scheduler's clock reading."""

    # Jitter's randomness (tests pin it).
    _random: Callable[[], float] = staticmethod(random.random)

    async def promote_due(self, now_ms: int) -> Promotion:
        """Due SCHEDULED tasks to PENDING, up to MAX_BATCHES batches."""
        return await promote_due(self._run, self._client, self._keys, now_ms, self._settings.event_retention)

    async def expire_finished(self, now_ms: int) -> int:
        """Finished tasks past their retention or beyond their count cap, removed in bounded
        batches (the oldest first). Returns how many were removed."""
        removed = 0
        for rule in self._settings.retention:
            for _ in range(MAX_BATCHES):
                expired, full = await self.expire_finished_batch(rule, now_ms)
                removed += expired
                if not full:
                    break
        return removed

    async def expire_finished_batch(
        self, rule: Retention, now_ms: int, limit: int = EXPIRE_BATCH
    ) -> tuple[int, bool]:
        """One TASK_EXPIRE_FINISHED call; (removed, whether more candidates may be waiting)."""
        if not rule.keep_ms and not rule.max_count:
            return 0, False
        k = self._keys
        index = k.finished(rule.status)
        cutoff = now_ms - rule.keep_ms if rule.keep_ms else -1
        ids: list[str] = []
        if rule.keep_ms:
            ids = cast(
                list[str], await self._client.zrange(index, "-inf", cutoff, byscore=True, offset=0, num=limit)
            )
        if rule.max_count and len(ids) < limit:
            excess = int(await self._client.zcard(index)) - rule.max_count
            if excess > 0:
                oldest = cast(list[str], await self._client.zrange(index, 0, min(excess, limit) - 1))
                ids += [task_id for task_id in oldest if task_id not in set(ids)][: limit - len(ids)]
        if not ids:
            return 0, False
        queues = await queues_of(self._client, k, ids)
        result = await self._run(
            "TASK_EXPIRE_FINISHED",
            keys={
                "all_tasks": k.all_tasks,
                "idx": k.status_index(rule.status),
                "finished": index,
                "events": k.events,
                "counts": k.queue_counts,
            },
            args={
                "status": rule.status,
                "now_ms": now_ms,
                "maxlen": self._settings.event_retention,
                "cutoff_ms": cutoff,
                "keep": rule.max_count if rule.max_count else -1,
            },
            extra_keys=[
                key
                for task_id, queue in zip(ids, queues, strict=True)
                for key in (k.task(task_id), k.queue(queue, "all"))
            ],
            extra_args=[item for pair in zip(ids, queues, strict=True) for item in pair],
        )
        reply = json.loads(ok_payload(result))
        return int(reply["expired"]), len(ids) == limit

    async def expire_leases(self, now_ms: int) -> Expiry:
        """IN_PROGRESS tasks whose lease deadline passed: taken back (retried or FAILED), bounded."""
        total = Expiry(0, 0, 0, 0, 0, 0)
        for _ in range(MAX_BATCHES):
            batch = await self.expire_leases_batch(now_ms)
            total = Expiry(*(a + b for a, b in zip(astuple(total), astuple(batch), strict=True)))
            if batch.expired + batch.dropped < EXPIRE_BATCH:
                break
        return total

    async def expire_leases_batch(self, now_ms: int, limit: int = EXPIRE_BATCH) -> Expiry:
        k = self._keys
        ids = cast(
            list[str],
            await self._client.zrange(k.leases, "-inf", f"({now_ms}", byscore=True, offset=0, num=limit),
        )
        if not ids:
            return Expiry(0, 0, 0, 0, 0, 0)
        async with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(k.task(task_id), "assignedTo", "retry", "attempts", "queue")
            rows = cast(list[list[str | None]], await pipe.execute())
        keys: list[str] = []
        args: list[str | int] = []
        for task_id, (holder, policy, attempts, queue) in zip(ids, rows, strict=True):
            queue = queue or DEFAULT_QUEUE
            keys += [k.task(task_id), k.held(holder or ""), *queue_keys(k, queue)]
            args += [
                task_id,
                holder or "",
                retry_at(policy, int(attempts or 0), now_ms, self._random()),
                queue,
            ]
        result = await self._run(
            "TASK_EXPIRE_LEASES",
            keys={
                "leases": k.leases,
                "counts": k.queue_counts,
                "due": k.due,
                "idx_in_progress": k.status_index("in_progress"),
                "idx_pending": k.status_index("pending"),
                "idx_scheduled": k.status_index("scheduled"),
                "idx_failed": k.status_index("failed"),
                "events": k.events,
                "finished_failed": k.finished("failed"),
            },
            args={
                "now_ms": now_ms,
                "maxlen": self._settings.event_retention,
                "max_failovers": self._settings.max_failovers,
            },
            extra_keys=keys,
            extra_args=args,
        )
        return Expiry(**json.loads(ok_payload(result)))
