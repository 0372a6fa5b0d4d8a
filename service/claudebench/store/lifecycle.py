"""The task lifecycle's periodic work (docs/lifecycle.md): promotion of due SCHEDULED tasks, in
bounded batches, each one script call over ids read just before from an index."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from claudebench.keys import Keyspace
from claudebench.redis_connect import RedisClient
from claudebench.scripts.results import ScriptResult
from claudebench.store.base import Store
from claudebench.store.errors import ok_payload

# A store's script runner (ScriptExecutor.run).
Runner = Callable[..., Awaitable[ScriptResult]]
# Due tasks promoted per script call, and per scheduler tick at most this many calls.
PROMOTE_BATCH = 200
MAX_BATCHES = 10


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
    """One TASK_PROMOTE_DUE call over up to `limit` tasks due at now_ms (earliest first)."""
    ids = cast(
        list[str],
        await client.zrange(keys.due, "-inf", now_ms, byscore=True, offset=0, num=limit),
    )
    result = await run(
        "TASK_PROMOTE_DUE",
        keys={
            "due": keys.due,
            "pending": keys.pending,
            "idx_scheduled": keys.status_index("scheduled"),
            "idx_pending": keys.status_index("pending"),
            "events": keys.events,
        },
        args={"now_ms": now_ms, "maxlen": maxlen},
        extra_keys=[keys.task(task_id) for task_id in ids],
        extra_args=ids,
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
class LifecycleSettings:
    event_retention: int = 100_000


class LifecycleStore(Store[LifecycleSettings]):
    """The scheduler's jobs over the task lifecycle; each takes the scheduler's clock reading."""

    async def promote_due(self, now_ms: int) -> Promotion:
        """Due SCHEDULED tasks to PENDING, up to MAX_BATCHES batches."""
        return await promote_due(self._run, self._client, self._keys, now_ms, self._settings.event_retention)
