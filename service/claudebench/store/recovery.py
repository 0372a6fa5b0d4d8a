"""Failure recovery: find instances silent for too long and recover their tasks, on demand
(CheckHealth) and in the background on one replica at a time."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

from claudebench.redis_connect import REDIS_FAULTS
from claudebench.store.clock import Clock, wall_clock_ms
from claudebench.store.coordination import CoordinationStore
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore

log = logging.getLogger(__name__)

# Each pass reads the silent instances in batches of this size, at most this many batches.
BATCH = 100
MAX_BATCHES = 10
HEALTHY_LISTED = 1000
LEASE = "recovery"


@dataclass
class HealthReport:
    healthy: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reassigned: dict[str, int] = field(default_factory=dict)


class FleetRecovery:
    """Declares silent instances offline and returns their tasks to the queue."""

    def __init__(
        self,
        instances: InstanceStore,
        coordination: CoordinationStore,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self._instances = instances
        self._coordination = coordination
        self._clock = clock
        self.replica_id = f"replica-{uuid.uuid4().hex[:12]}"

    async def check(self, timeout_ms: int) -> HealthReport:
        """Recover every instance silent for longer than timeout_ms (bounded per call)."""
        report = HealthReport()
        for _ in range(MAX_BATCHES):
            silent = await self._instances.silent_since(self._clock() - timeout_ms, BATCH)
            if not silent:
                break
            progressed = False
            for instance_id in silent:
                try:
                    outcome = await self._instances.recover(instance_id, timeout_ms)
                except DomainError as exc:  # gone meanwhile (unregistered), or contention
                    log.info("recovery of %s skipped: %s", instance_id, exc.message)
                    continue
                if outcome.reaped:
                    progressed = True
                    report.failed.append(instance_id)
                    report.reassigned[instance_id] = outcome.requeued + outcome.scheduled + outcome.failed
                    log.warning(
                        "instance %s declared offline: %d tasks requeued, %d scheduled to retry, %d failed",
                        instance_id,
                        outcome.requeued,
                        outcome.scheduled,
                        outcome.failed,
                    )
            if not progressed:
                break  # the rest heartbeat meanwhile or were recovered by another replica
        report.healthy = await self._instances.live_since(self._clock() - timeout_ms, HEALTHY_LISTED)
        return report

    async def run_forever(self, interval_s: float, timeout_ms: int) -> None:
        """Every interval, if this replica holds the recovery lease, run a check."""
        lease_ms = int(interval_s * 3 * 1000)
        while True:
            await asyncio.sleep(interval_s)
            try:
                if await self._coordination.acquire_lease(LEASE, self.replica_id, lease_ms):
                    await self.check(timeout_ms)
            except REDIS_FAULTS as exc:
                log.warning("background recovery skipped this round: %s", exc)
