"""Instance registration and liveness (the simple form; fleet recovery builds on it)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.clock import Clock, wall_clock_ms
from claudebench.store.errors import ok_payload


@dataclass(frozen=True, slots=True)
class Leadership:
    became_leader: bool
    is_leader: bool


class InstanceStore:
    """Registers instances and records their heartbeats."""

    def __init__(
        self,
        executor: ScriptExecutor,
        keys: Keyspace,
        instance_ttl_ms: int,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self._run = executor.run
        self._keys = keys
        self._ttl_ms = instance_ttl_ms
        self._clock = clock

    def _instance_keys(self, instance_id: str) -> dict[str, str]:
        k = self._keys
        return {"instance": k.instance(instance_id), "liveness": k.liveness, "leader": k.leader}

    async def register(
        self,
        instance_id: str,
        roles: Sequence[str],
        max_tasks: int,
        metadata: Mapping[str, Any],
    ) -> Leadership:
        result = await self._run(
            "INSTANCE_REGISTER",
            keys=self._instance_keys(instance_id),
            args={
                "instance_id": instance_id,
                "now_ms": self._clock(),
                "ttl_ms": self._ttl_ms,
                "max_tasks": max_tasks,
                "roles": json.dumps(list(roles)),
                "metadata": json.dumps(dict(metadata), separators=(",", ":")),
            },
        )
        return _leadership(ok_payload(result))

    async def heartbeat(self, instance_id: str) -> Leadership:
        result = await self._run(
            "INSTANCE_HEARTBEAT",
            keys=self._instance_keys(instance_id),
            args={"instance_id": instance_id, "now_ms": self._clock(), "ttl_ms": self._ttl_ms},
        )
        return _leadership(ok_payload(result))


def _leadership(payload: str) -> Leadership:
    decoded = json.loads(payload)
    return Leadership(became_leader=bool(decoded["becameLeader"]), is_leader=bool(decoded["isLeader"]))
