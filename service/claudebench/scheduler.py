"""The scheduler: one replica at a time (the holder of the `scheduler` lease) runs the periodic
lifecycle work — promotion of due tasks, lease expiry, retention, schedule ticks — every interval.

Each piece of work is a registered *job*: an async callable taking the scheduler's clock reading
(epoch ms) and doing one bounded batch of work. A job that fails (Redis unreachable, a bug) is logged
and the others still run; the next tick tries again. Jobs must be safe to run on two replicas at
once (a lease can lapse while its old holder is mid-tick): every job is a script that re-checks
what it changes, so the lease is an economy, not what makes the work correct.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from claudebench.config import Settings
from claudebench.redis_connect import REDIS_FAULTS
from claudebench.store.clock import Clock, wall_clock_ms
from claudebench.store.coordination import CoordinationStore
from claudebench.store.lifecycle import LifecycleSettings, LifecycleStore, Retention

log = logging.getLogger(__name__)

LEASE = "scheduler"
# The lease outlives this many intervals, so one slow tick does not hand the work to another replica.
LEASE_INTERVALS = 3

Job = Callable[[int], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class RegisteredJob:
    name: str
    run: Job


class Scheduler:
    """Runs the registered jobs every interval while this replica holds the scheduler lease."""

    def __init__(
        self,
        coordination: CoordinationStore,
        interval_s: float = 1.0,
        clock: Clock = wall_clock_ms,
        replica_id: str | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the scheduler interval must be positive")
        self._coordination = coordination
        self.interval_s = interval_s
        self._clock = clock
        self.replica_id = replica_id or f"replica-{uuid.uuid4().hex[:12]}"
        self._jobs: list[RegisteredJob] = []

    @property
    def jobs(self) -> list[str]:
        return [job.name for job in self._jobs]

    def register(self, name: str, job: Job) -> None:
        """Add a job, run after those registered before it on every tick."""
        if name in self.jobs:
            raise ValueError(f"a scheduler job named {name!r} is already registered")
        self._jobs.append(RegisteredJob(name, job))

    async def tick(self) -> bool:
        """Take or renew the lease; holding it, run every job once. True when this replica ran them."""
        lease_ms = max(1, int(self.interval_s * LEASE_INTERVALS * 1000))
        try:
            held = await self._coordination.acquire_lease(LEASE, self.replica_id, lease_ms)
        except REDIS_FAULTS as exc:
            log.warning("scheduler tick skipped: %s", exc)
            return False
        if not held:
            return False
        for job in self._jobs:
            try:
                await job.run(self._clock())
            except REDIS_FAULTS as exc:
                log.warning("scheduler job %s skipped this tick: %s", job.name, exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one job must not stop the others (logged with its stack)
                log.exception("scheduler job %s failed", job.name)
        return True

    async def run_forever(self) -> None:
        """Tick every interval until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.tick()


def lifecycle_scheduler(
    coordination: CoordinationStore, lifecycle: LifecycleStore, interval_s: float
) -> Scheduler:
    """The server's scheduler with the lifecycle jobs: promotion of due tasks, then lease expiry
    (so a task due now is claimable before the expiry's retries add more), then retention."""
    scheduler = Scheduler(coordination, interval_s)
    scheduler.register("promote_due", lifecycle.promote_due)
    scheduler.register("expire_leases", lifecycle.expire_leases)
    scheduler.register("expire_finished", lifecycle.expire_finished)
    return scheduler


def lifecycle_settings(settings: Settings) -> LifecycleSettings:
    """The lifecycle jobs' settings from the server's."""
    return LifecycleSettings(
        settings.event_retention,
        settings.max_failovers,
        tuple(
            Retention(
                status,
                int(getattr(settings, f"{status}_retention_s") * 1000),
                getattr(settings, f"max_{status}_tasks"),
            )
            for status in ("completed", "failed", "cancelled")
        ),
    )
