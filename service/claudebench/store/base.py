"""What every store holds: the script runner, a Redis client for reads, the keyspace, settings and
the clock."""

from __future__ import annotations

from typing import Generic, TypeVar

from claudebench.keys import Keyspace
from claudebench.redis_connect import RedisClient
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.clock import Clock, wall_clock_ms

SettingsT = TypeVar("SettingsT")


class Store(Generic[SettingsT]):
    def __init__(
        self,
        executor: ScriptExecutor,
        client: RedisClient,
        keys: Keyspace,
        settings: SettingsT,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self._run = executor.run
        self._run_together = executor.run_together
        self._client = client
        self._keys = keys
        self._settings = settings
        self._clock = clock
