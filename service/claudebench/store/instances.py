"""Instances: registration, heartbeats, leaving, and recovery of the tasks of dead instances."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from claudebench.keys import DEFAULT_QUEUE
from claudebench.scripts.results import ResultCode
from claudebench.store.base import Store
from claudebench.store.errors import DomainError, ok_payload
from claudebench.store.lifecycle import queue_keys, queues_of, retry_at

# Retries of an unregister/recovery whose instance's held set changed between read and script.
STALE_RETRIES = 5


@dataclass(frozen=True, slots=True)
class FleetSettings:
    instance_ttl_ms: int = 30_000
    event_retention: int = 100_000
    system_event_retention: int = 10_000
    max_failovers: int = 3
    offline_retention_ms: int = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Leadership:
    became_leader: bool
    is_leader: bool


@dataclass(frozen=True, slots=True)
class Recovery:
    reaped: bool
    requeued: int
    failed: int
    # Tasks with a retry policy scheduled for a retry.
    scheduled: int = 0


class InstanceStore(Store[FleetSettings]):
    """Registers instances, records heartbeats, and recovers the tasks of instances that died."""

    def _instance_keys(self, instance_id: str) -> dict[str, str]:
        k = self._keys
        return {"instance": k.instance(instance_id), "liveness": k.liveness, "leader": k.leader}

    async def register(
        self,
        instance_id: str,
        roles: Sequence[str],
        max_tasks: int,
        metadata: Mapping[str, Any],
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        owner: str = "",
        owner_mode: str = "",
    ) -> Leadership:
        """Register (or re-register) an instance; `owner`/`owner_mode`: the registering token's
        fingerprint and how it may take the id (see INSTANCE_REGISTER), '' without auth."""
        result = await self._run(
            "INSTANCE_REGISTER",
            keys={
                **self._instance_keys(instance_id),
                "offline": self._keys.offline,
                "queues": self._keys.queues,
            },
            args={
                "instance_id": instance_id,
                "now_ms": self._clock(),
                "ttl_ms": self._settings.instance_ttl_ms,
                "max_tasks": max_tasks,
                "roles": json.dumps(list(roles)),
                "metadata": json.dumps(dict(metadata), separators=(",", ":")),
                "queues": json.dumps(list(queues)),
                "owner": owner,
                "owner_mode": owner_mode,
            },
        )
        return _leadership(ok_payload(result))

    async def owners(self, instance_ids: Sequence[str]) -> list[str | None]:
        """The owner fingerprint of each instance (None: not registered, or registered without
        auth), in one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for instance_id in instance_ids:
                pipe.hget(self._keys.instance(instance_id), "owner")
            return cast(list[str | None], await pipe.execute())

    async def heartbeat(self, instance_id: str) -> Leadership:
        result = await self._run(
            "INSTANCE_HEARTBEAT",
            keys=self._instance_keys(instance_id),
            args={
                "instance_id": instance_id,
                "now_ms": self._clock(),
                "ttl_ms": self._settings.instance_ttl_ms,
            },
        )
        return _leadership(ok_payload(result))

    async def gossip(self, instance_id: str, status: str) -> dict[str, Any]:
        k = self._keys
        result = await self._run(
            "GOSSIP_HEALTH_UPDATE",
            keys={"gossip": k.gossip, "gossip_counts": k.gossip_counts, "partition": k.partition},
            args={"instance_id": instance_id, "status": status},
        )
        return cast(dict[str, Any], json.loads(ok_payload(result)))

    def _departure_keys(self, instance_id: str) -> dict[str, str]:
        k = self._keys
        return {
            "instance": k.instance(instance_id),
            "liveness": k.liveness,
            "offline": k.offline,
            "held": k.held(instance_id),
            "counts": k.queue_counts,
            "idx_pending": k.status_index("pending"),
            "idx_in_progress": k.status_index("in_progress"),
            "events": k.events,
            "leader": k.leader,
            "gossip": k.gossip,
            "gossip_counts": k.gossip_counts,
            "system_events": k.system_events,
        }

    async def live_worker(self, instance_id: str) -> tuple[int, list[str]]:
        """The max_tasks and registered queues of a registered, live instance (a read: the checks
        TASK_CLAIM makes)."""
        status, last_seen, max_tasks, queues = cast(
            list[str | None],
            await self._client.hmget(
                self._keys.instance(instance_id), ["status", "lastSeen", "maxTasks", "queues"]
            ),
        )
        if status is None:
            raise DomainError(
                ResultCode.INSTANCE_NOT_REGISTERED,
                f"Instance {instance_id} is not registered; call Register first",
            )
        if status != "active" or self._clock() - int(last_seen or 0) > self._settings.instance_ttl_ms:
            raise DomainError(
                ResultCode.INSTANCE_OFFLINE,
                f"Instance {instance_id} is offline (no heartbeat within the liveness TTL); register again",
            )
        return int(max_tasks or 0), json.loads(queues) if queues else [DEFAULT_QUEUE]

    async def held_tasks(self, instance_id: str) -> list[str]:
        return cast(list[str], await self._client.zrange(self._keys.held(instance_id), 0, -1))

    async def _held_with_queues(self, held: list[str]) -> tuple[list[str], list[str | int]]:
        """The held tasks as a departure script takes them: per task its key and its queue's
        pending, backlog and fair keys; and its id and queue name."""
        keys: list[str] = []
        args: list[str | int] = []
        for task_id, queue in zip(held, await queues_of(self._client, self._keys, held), strict=True):
            keys += [self._keys.task(task_id), *queue_keys(self._keys, queue)]
            args += [task_id, queue]
        return keys, args

    async def unregister(self, instance_id: str) -> int:
        """Release every task the instance holds and remove it. Returns how many were released."""
        for _ in range(STALE_RETRIES):
            held = await self.held_tasks(instance_id)
            held_keys, held_args = await self._held_with_queues(held)
            result = await self._run(
                "INSTANCE_UNREGISTER",
                keys=self._departure_keys(instance_id),
                args={
                    "instance_id": instance_id,
                    "now_ms": self._clock(),
                    "maxlen": self._settings.event_retention,
                    "system_maxlen": self._settings.system_event_retention,
                },
                extra_keys=held_keys,
                extra_args=held_args,
            )
            if result.code is not ResultCode.STALE:
                released: int = json.loads(ok_payload(result))["released"]
                return released
        raise _contention(instance_id)

    async def recover(self, instance_id: str, timeout_ms: int) -> Recovery:
        """If the instance has been silent for longer than timeout_ms, declare it offline and put
        its tasks back in the queue (REASSIGN_FAILED_TASKS)."""
        for _ in range(STALE_RETRIES):
            held = await self.held_tasks(instance_id)
            held_keys, held_args = await self._held_with_queues(held)
            result = await self._run(
                "REASSIGN_FAILED_TASKS",
                keys={
                    **self._departure_keys(instance_id),
                    "idx_failed": self._keys.status_index("failed"),
                    "finished_failed": self._keys.finished("failed"),
                    "due": self._keys.due,
                    "idx_scheduled": self._keys.status_index("scheduled"),
                },
                args={
                    "instance_id": instance_id,
                    "now_ms": self._clock(),
                    "timeout_ms": timeout_ms,
                    "max_failovers": self._settings.max_failovers,
                    "maxlen": self._settings.event_retention,
                    "system_maxlen": self._settings.system_event_retention,
                    "offline_retention_ms": self._settings.offline_retention_ms,
                    "retry_at": json.dumps(await self._retry_times(held)),
                },
                extra_keys=held_keys,
                extra_args=held_args,
            )
            if result.code is not ResultCode.STALE:
                outcome = json.loads(ok_payload(result))
                return Recovery(
                    bool(outcome["reaped"]),
                    int(outcome["requeued"]),
                    int(outcome["failed"]),
                    int(outcome["scheduled"]),
                )
        raise _contention(instance_id)

    async def _retry_times(self, task_ids: list[str]) -> dict[str, int]:
        """retry_at (see store/lifecycle.retry_at) of the held tasks that have a retry policy."""
        if not task_ids:
            return {}
        async with self._client.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hmget(self._keys.task(task_id), "retry", "attempts")
            rows = cast(list[list[str | None]], await pipe.execute())
        now = self._clock()
        return {
            task_id: retry_at(policy, int(attempts or 0), now, random.random())
            for task_id, (policy, attempts) in zip(task_ids, rows, strict=True)
            if policy
        }

    async def silent_since(self, cutoff_ms: int, limit: int) -> list[str]:
        """Up to `limit` active instances last seen before cutoff_ms (a range read of the liveness
        index, never a scan)."""
        return cast(
            list[str],
            await self._client.zrange(
                self._keys.liveness, "-inf", f"({cutoff_ms}", byscore=True, offset=0, num=limit
            ),
        )

    async def leader(self) -> str | None:
        """The instance holding the leader lease now, if any (a read of the lease key)."""
        return cast(str | None, await self._client.get(self._keys.leader))

    async def page_by_last_seen(self, offset: int, count: int) -> list[str]:
        """Registered (not offline) instances, most recently seen first."""
        return cast(
            list[str], await self._client.zrange(self._keys.liveness, offset, offset + count - 1, desc=True)
        )

    async def metrics_of_live(self, limit: int) -> list[InstanceCounters]:
        """Held/completed/failed counts of the `limit` instances seen most recently (two pipelined
        reads, bounded by limit)."""
        ids = await self.live_since(self._clock() - self._settings.instance_ttl_ms, limit)
        async with self._client.pipeline(transaction=False) as pipe:
            for instance_id in ids:
                pipe.zcard(self._keys.held(instance_id))
                pipe.hmget(self._keys.instance(instance_id), "tasksCompleted", "tasksFailed")
            replies = await pipe.execute()
        return [
            InstanceCounters(instance_id, int(held), int(counts[0] or 0), int(counts[1] or 0))
            for instance_id, held, counts in zip(ids, replies[::2], replies[1::2], strict=True)
        ]

    async def live_since(self, cutoff_ms: int, limit: int) -> list[str]:
        """Up to `limit` instances seen at or after cutoff_ms, most recently seen first."""
        return cast(
            list[str],
            await self._client.zrange(
                self._keys.liveness, "+inf", cutoff_ms, byscore=True, desc=True, offset=0, num=limit
            ),
        )


@dataclass(frozen=True, slots=True)
class InstanceCounters:
    instance_id: str
    held: int
    completed: int
    failed: int


def _leadership(payload: str) -> Leadership:
    decoded = json.loads(payload)
    return Leadership(became_leader=bool(decoded["becameLeader"]), is_leader=bool(decoded["isLeader"]))


def _contention(instance_id: str) -> DomainError:
    return DomainError(
        ResultCode.STALE, f"The tasks of {instance_id} kept changing during the call; retry it"
    )
