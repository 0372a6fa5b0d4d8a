"""Queue settings, pause/resume (QUEUE_CONFIGURE) and queue counts read from indexes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from claudebench.keys import DEFAULT_QUEUE
from claudebench.scripts.results import ResultCode
from claudebench.store.base import Store
from claudebench.store.errors import DomainError, ok_payload

# ListQueues answers at most this many queues (the registry is a ZSET; no scan either way).
MAX_LISTED_QUEUES = 1000
COUNTED_STATUSES = ("scheduled", "in_progress", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class QueueSettings:
    system_event_retention: int = 10_000


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue's stored settings (config hash fields) and its task counts by status."""

    name: str
    settings: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)


class QueueStore(Store[QueueSettings]):
    """Configures, pauses, resumes and reads queues."""

    async def configure(self, name: str, settings: Mapping[str, str | int]) -> QueueInfo:
        """Set (or with '' / 0 clear) config fields of queue `name`, creating it."""
        pairs = [item for pair in settings.items() for item in pair]
        return await self._change(name, "configure", pairs)

    async def pause(self, name: str) -> QueueInfo:
        return await self._change(name, "pause", [])

    async def resume(self, name: str) -> QueueInfo:
        return await self._change(name, "resume", [])

    async def _change(self, name: str, action: str, pairs: list[str | int]) -> QueueInfo:
        k = self._keys
        result = await self._run(
            "QUEUE_CONFIGURE",
            keys={
                "config": k.queue(name, "config"),
                "queues": k.queues,
                "system_events": k.system_events,
            },
            args={
                "queue": name,
                "now_ms": self._clock(),
                "system_maxlen": self._settings.system_event_retention,
                "action": action,
            },
            extra_args=pairs,
        )
        ok_payload(result)
        return await self.get(name)

    async def names(self) -> list[str]:
        """Every queue that exists, by name (the default queue always does)."""
        found = cast(list[str], await self._client.zrange(self._keys.queues, 0, MAX_LISTED_QUEUES - 1))
        return sorted({DEFAULT_QUEUE, *found})

    async def get(self, name: str) -> QueueInfo:
        return (await self.read([name], must_exist=True))[0]

    async def read(self, names: list[str], must_exist: bool = False) -> list[QueueInfo]:
        """Settings and counts of the queues, in one pipelined read of their indexes."""
        k = self._keys
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zscore(k.queues, name)
                pipe.hgetall(k.queue(name, "config"))
                pipe.zcard(k.queue(name, "pending"))
                pipe.zcard(k.queue(name, "backlog"))
                pipe.hmget(k.queue_counts, [f"{name}|{status}" for status in COUNTED_STATUSES])
            # The default queue's counts: each status index minus the named queues' total.
            for status in COUNTED_STATUSES:
                pipe.zcard(k.status_index(status))
            pipe.hmget(k.queue_counts, [f"*|{status}" for status in COUNTED_STATUSES])
            replies = await pipe.execute()
        indexed = replies[5 * len(names) : 5 * len(names) + len(COUNTED_STATUSES)]
        named = replies[-1]
        default_counts = [int(n) - int(t or 0) for n, t in zip(indexed, named, strict=True)]
        infos = []
        for i, name in enumerate(names):
            known, config, pending, backlog, counts = replies[5 * i : 5 * i + 5]
            if must_exist and known is None and name != DEFAULT_QUEUE:
                raise DomainError(ResultCode.NOT_FOUND, f"Queue {name} does not exist")
            if name == DEFAULT_QUEUE:
                counts = default_counts
            by_status = {s: int(c or 0) for s, c in zip(COUNTED_STATUSES, counts, strict=True)}
            by_status["pending"] = int(pending) + int(backlog)
            infos.append(QueueInfo(name, cast(dict[str, str], config), by_status))
        return infos
