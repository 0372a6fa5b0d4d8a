"""Batches, quorum votes, leases, global state and metrics: the fleet-wide scripts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from claudebench.keys import ALL_TASK_STATUSES
from claudebench.store.base import Store
from claudebench.store.errors import ok_payload


@dataclass(frozen=True, slots=True)
class CoordinationSettings:
    instance_ttl_ms: int = 30_000
    system_event_retention: int = 10_000
    batch_lock_ttl_ms: int = 30_000
    record_retention_ms: int = 24 * 3600 * 1000
    throughput_window_s: int = 60


@dataclass(frozen=True, slots=True)
class BatchState:
    acquired: bool
    completed: bool
    processor: str
    processed: int
    total: int


@dataclass(frozen=True, slots=True)
class QuorumState:
    voted: bool
    reached: bool
    decision: str
    votes: int
    agreeing: int
    total: int


class CoordinationStore(Store[CoordinationSettings]):
    """Runs the fleet-wide scripts: batch locks, quorum, leases, state version, metrics, health."""

    async def coordinate_batch(
        self, batch_id: str, instance_id: str, total: int, processed: int, done: bool
    ) -> BatchState:
        k = self._keys
        result = await self._run(
            "COORDINATE_BATCH",
            keys={
                "lock": k.batch_lock(batch_id),
                "progress": k.batch(batch_id),
                "system_events": k.system_events,
            },
            args={
                "batch_id": batch_id,
                "instance_id": instance_id,
                "total_items": total,
                "processed_items": processed,
                "done": "1" if done else "0",
                "now_ms": self._clock(),
                "lock_ttl_ms": self._settings.batch_lock_ttl_ms,
                "retention_ms": self._settings.record_retention_ms,
                "system_maxlen": self._settings.system_event_retention,
            },
        )
        state = json.loads(ok_payload(result))
        return BatchState(
            acquired=bool(state["acquired"]),
            completed=bool(state["completed"]),
            processor=str(state.get("processor") or ""),
            processed=int(state["processed"]),
            total=int(state["total"]),
        )

    async def quorum_vote(
        self, decision_id: str, instance_id: str, value: str, total: int | None
    ) -> QuorumState:
        k = self._keys
        result = await self._run(
            "QUORUM_VOTE",
            keys={
                "votes": k.quorum_votes(decision_id),
                "result": k.quorum(decision_id),
                "liveness": k.liveness,
                "system_events": k.system_events,
            },
            args={
                "decision_id": decision_id,
                "instance_id": instance_id,
                "value": value,
                "total_instances": "" if total is None else total,
                "now_ms": self._clock(),
                "ttl_ms": self._settings.instance_ttl_ms,
                "retention_ms": self._settings.record_retention_ms,
                "system_maxlen": self._settings.system_event_retention,
            },
        )
        state = json.loads(ok_payload(result))
        return QuorumState(
            voted=bool(state["voted"]),
            reached=bool(state["reached"]),
            decision=str(state["decision"]),
            votes=int(state["votes"]),
            agreeing=int(state["agreeing"]),
            total=int(state["total"]),
        )

    async def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        result = await self._run(
            "LEASE_ACQUIRE",
            keys={"lease": self._keys.lease(name)},
            args={"owner": owner, "ttl_ms": ttl_ms},
        )
        return bool(json.loads(ok_payload(result))["held"])

    async def sync_global_state(self, change: dict[str, Any]) -> int:
        result = await self._run(
            "SYNC_GLOBAL_STATE",
            keys={"state": self._keys.global_state},
            args={"state_json": json.dumps(change, separators=(",", ":")), "now_ms": self._clock()},
        )
        return int(ok_payload(result))

    async def aggregate_metrics(self) -> dict[str, Any]:
        k = self._keys
        result = await self._run(
            "AGGREGATE_GLOBAL_METRICS",
            keys={
                **{f"idx_{s}": k.status_index(s) for s in ALL_TASK_STATUSES},
                "queue_metrics": k.queue_metrics,
                "throughput": k.throughput,
                "liveness": k.liveness,
                "offline": k.offline,
                "events": k.events,
                "snapshot": k.global_metrics,
            },
            args={
                "now_ms": self._clock(),
                "ttl_ms": self._settings.instance_ttl_ms,
                "window_s": self._settings.throughput_window_s,
            },
        )
        return cast(dict[str, Any], json.loads(ok_payload(result)))

    async def health_counts(self) -> dict[str, Any]:
        k = self._keys
        result = await self._run(
            "GET_SYSTEM_HEALTH",
            keys={"liveness": k.liveness, "offline": k.offline, "partition": k.partition},
            args={"now_ms": self._clock(), "ttl_ms": self._settings.instance_ttl_ms},
        )
        return cast(dict[str, Any], json.loads(ok_payload(result)))

    async def system_state(self, instance_ids: list[str], recent_events: int) -> dict[str, Any]:
        k = self._keys
        pairs = [key for i in instance_ids for key in (k.instance(i), k.held(i))]
        result = await self._run(
            "GET_SYSTEM_STATE",
            keys={
                **{f"idx_{s}": k.status_index(s) for s in ALL_TASK_STATUSES},
                "state": k.global_state,
                "events": k.events,
            },
            args={"recent_events": recent_events},
            extra_keys=pairs,
            extra_args=instance_ids,
        )
        state = cast(dict[str, Any], json.loads(ok_payload(result)))
        # cjson encodes an empty Lua table as an object.
        for field in ("instances", "events"):
            if not state.get(field):
                state[field] = []
        return state

    async def script_metrics(self) -> dict[str, str]:
        return cast(dict[str, str], await self._client.hgetall(self._keys.script_metrics))
