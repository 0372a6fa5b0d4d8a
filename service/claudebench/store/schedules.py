"""Periodic schedules: one script call per change, and the tick that turns due schedules into tasks.

A tick reads the due schedules (one bounded ZRANGE), creates each one's task through the caller's
`create_task` (the same path as CreateTask, with an id derived from the schedule and the tick, so
that a second creation of the same tick is refused with ALREADY_EXISTS), then advances the schedule
with SCHEDULE_ADVANCE, which only the first caller for a tick gets through. Any number of replicas
(or retries after a crash between the two steps) thus create one task per tick.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from claudebench.redis_connect import REDIS_FAULTS
from claudebench.scripts.results import ResultCode
from claudebench.store.base import Store
from claudebench.store.errors import DomainError, ok_payload
from claudebench.store.schedule_times import Spec, first_run, run_after

log = logging.getLogger(__name__)

# Schedules handled per tick call; a call handles what is due in batches of this, at most MAX_BATCHES.
TICK_BATCH = 100
MAX_BATCHES = 10
STALE_RETRIES = 5


# A tick is late (missed) beyond this, or beyond this many scheduler intervals if that is longer.
LATE_GRACE_MS = 60_000
LATE_GRACE_INTERVALS = 5


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    # A tick found due later than this after its time was missed (no replica ran): it is skipped,
    # not replayed, and the schedule moves on to its next run.
    late_grace_ms: int = LATE_GRACE_MS

    @classmethod
    def for_scheduler(cls, interval_s: float) -> ScheduleSettings:
        """The grace for a scheduler ticking every interval_s: a slow scheduler is not a missed tick."""
        return cls(late_grace_ms=max(LATE_GRACE_MS, int(interval_s * LATE_GRACE_INTERVALS * 1000)))


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored. `template` is the CreateTaskRequest as protobuf JSON."""

    schedule_id: str
    seq: int
    spec: Spec
    template: str
    paused: bool
    next_run_ms: int | None
    last_run_ms: int | None
    last_task_id: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class SchedulePage:
    schedules: list[Schedule]
    next_after_seq: int | None


@dataclass
class TickReport:
    """What one tick call did: tasks created (by id), ticks skipped as missed, ticks another
    runner had handled, schedules whose task could not be created (logged)."""

    created: list[str] = field(default_factory=list)
    skipped: int = 0
    already_handled: int = 0
    failed: int = 0


CreateTask = Callable[[Schedule, str], Awaitable[object]]
"""Creates the tick's task from the schedule's template with the given id (raising DomainError
ALREADY_EXISTS if it exists, ValueError if the template is no longer accepted)."""


def tick_task_id(schedule_id: str, tick_ms: int) -> str:
    """The id of the task a schedule's tick creates: `{schedule_id}@{tick epoch ms}`."""
    return f"{schedule_id}@{tick_ms}"


def _optional_int(value: str | None) -> int | None:
    return int(value) if value else None


def _schedule(fields: dict[str, str]) -> Schedule:
    interval = fields.get("intervalMs")
    return Schedule(
        schedule_id=fields["id"],
        seq=int(fields["seq"]),
        spec=Spec(
            cron=fields.get("cron"),
            interval_ms=int(interval) if interval else None,
            time_zone=fields.get("timeZone", ""),
        ),
        template=fields["template"],
        paused=fields.get("paused") == "1",
        next_run_ms=_optional_int(fields.get("nextRun")),
        last_run_ms=_optional_int(fields.get("lastRun")),
        last_task_id=fields.get("lastTaskId", ""),
        created_ms=int(fields["createdAt"]),
        updated_ms=int(fields["updatedAt"]),
    )


def _snapshot(payload: str) -> Schedule:
    fields: dict[str, str] = json.loads(payload)
    return _schedule(fields)


class ScheduleStore(Store[ScheduleSettings]):
    """Creates, reads, lists, pauses, resumes and deletes schedules, and fires due ticks."""

    async def create(self, schedule_id: str, spec: Spec, template: str, paused: bool) -> Schedule:
        now = self._clock()
        k = self._keys
        result = await self._run(
            "SCHEDULE_CREATE",
            keys={
                "schedule": k.schedule(schedule_id),
                "all_schedules": k.schedules_all,
                "due": k.schedules_due,
                "seq": k.schedule_seq,
            },
            args={
                "schedule_id": schedule_id,
                "cron": spec.cron or "",
                "interval_ms": spec.interval_ms or "",
                "time_zone": spec.time_zone,
                "template": template,
                "paused": int(paused),
                "next_run_ms": first_run(spec, now),
                "now_ms": now,
            },
        )
        return _snapshot(ok_payload(result))

    async def get(self, schedule_id: str) -> Schedule:
        fields = cast(dict[str, str], await self._client.hgetall(self._keys.schedule(schedule_id)))
        if not fields:
            raise DomainError(ResultCode.NOT_FOUND, f"Schedule {schedule_id} does not exist")
        return _schedule(fields)

    async def delete(self, schedule_id: str) -> None:
        k = self._keys
        result = await self._run(
            "SCHEDULE_DELETE",
            keys={
                "schedule": k.schedule(schedule_id),
                "all_schedules": k.schedules_all,
                "due": k.schedules_due,
            },
            args={"schedule_id": schedule_id},
        )
        ok_payload(result)

    async def pause(self, schedule_id: str) -> Schedule:
        k = self._keys
        result = await self._run(
            "SCHEDULE_PAUSE",
            keys={"schedule": k.schedule(schedule_id), "due": k.schedules_due},
            args={"schedule_id": schedule_id, "now_ms": self._clock()},
        )
        return _snapshot(ok_payload(result))

    async def resume(self, schedule_id: str) -> Schedule:
        """Running again from the next run after now (a running schedule is left as it is)."""
        k = self._keys
        for _ in range(STALE_RETRIES):
            current = await self.get(schedule_id)
            now = self._clock()
            result = await self._run(
                "SCHEDULE_RESUME",
                keys={"schedule": k.schedule(schedule_id), "due": k.schedules_due},
                args={
                    "schedule_id": schedule_id,
                    "expected_seq": current.seq,
                    "next_run_ms": first_run(current.spec, now),
                    "now_ms": now,
                },
            )
            if result.code is not ResultCode.STALE:
                return _snapshot(ok_payload(result))
        raise DomainError.from_result(result)

    async def list_page(self, page_size: int, after_seq: int | None) -> SchedulePage:
        """A page of schedules in creation order, read from the creation index (never a scan)."""
        low = f"({after_seq}" if after_seq is not None else "-inf"
        entries = cast(
            list[tuple[str, float]],
            await self._client.zrange(
                self._keys.schedules_all,
                low,
                "+inf",
                byscore=True,
                offset=0,
                num=page_size + 1,
                withscores=True,
            ),
        )
        page = entries[:page_size]
        schedules = await self._read_many([schedule_id for schedule_id, _ in page])
        next_after = int(page[-1][1]) if len(entries) > page_size else None
        return SchedulePage(schedules=schedules, next_after_seq=next_after)

    async def _read_many(self, schedule_ids: list[str]) -> list[Schedule]:
        """The schedules that still exist (one deleted between two reads is left out)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for schedule_id in schedule_ids:
                pipe.hgetall(self._keys.schedule(schedule_id))
            found = await pipe.execute()
        return [_schedule(fields) for fields in found if fields]

    async def due(self, now_ms: int, limit: int) -> list[Schedule]:
        """Up to `limit` running schedules whose next run is at or before now_ms, earliest first."""
        ids = cast(
            list[str],
            await self._client.zrange(
                self._keys.schedules_due, "-inf", now_ms, byscore=True, offset=0, num=limit
            ),
        )
        return [s for s in await self._read_many(ids) if not s.paused and s.next_run_ms is not None]

    async def advance(self, schedule: Schedule, tick_ms: int, next_run_ms: int, task_id: str) -> bool:
        """Record the tick and move to next_run_ms; False if another caller already did (or the
        schedule was paused, deleted or replaced meanwhile)."""
        k = self._keys
        result = await self._run(
            "SCHEDULE_ADVANCE",
            keys={"schedule": k.schedule(schedule.schedule_id), "due": k.schedules_due},
            args={
                "schedule_id": schedule.schedule_id,
                "expected_seq": schedule.seq,
                "tick_ms": tick_ms,
                "next_run_ms": next_run_ms,
                "task_id": task_id,
                "now_ms": self._clock(),
            },
        )
        return result.ok

    async def tick(self, now: int, create_task: CreateTask) -> TickReport:
        """Fire every schedule due at `now` (the scheduler's clock reading), in bounded work:
        at most MAX_BATCHES batches of TICK_BATCH schedules."""
        report = TickReport()
        for _ in range(MAX_BATCHES):
            due = await self.due(now, TICK_BATCH)
            for schedule in due:
                try:
                    await self._fire(schedule, now, create_task, report)
                except REDIS_FAULTS:
                    raise  # Redis is away: the scheduler logs it once and tries again next tick
                except Exception:  # one broken schedule must not hold up the others behind it
                    report.failed += 1
                    log.exception("schedule %s: tick failed", schedule.schedule_id)
            if len(due) < TICK_BATCH:
                break
        return report

    async def _fire(self, schedule: Schedule, now: int, create_task: CreateTask, report: TickReport) -> None:
        tick = schedule.next_run_ms
        assert tick is not None
        task_id = ""
        if now - tick > self._settings.late_grace_ms:
            report.skipped += 1
            log.info(
                "schedule %s: tick %d missed (no replica ran then), not replayed", schedule.schedule_id, tick
            )
        else:
            task_id = tick_task_id(schedule.schedule_id, tick)
            try:
                await create_task(schedule, task_id)
            except DomainError as exc:
                if exc.code is not ResultCode.ALREADY_EXISTS:  # ALREADY_EXISTS: created by an earlier try
                    task_id = self._failed(schedule, tick, exc.message, report)
            except ValueError as exc:  # the template is refused now (a newer server's rules)
                task_id = self._failed(schedule, tick, str(exc), report)
        if await self.advance(schedule, tick, run_after(schedule.spec, tick, now), task_id):
            if task_id:
                report.created.append(task_id)
        else:
            report.already_handled += 1

    @staticmethod
    def _failed(schedule: Schedule, tick: int, reason: str, report: TickReport) -> str:
        """A tick whose task could not be created: logged, counted, and the schedule moves on."""
        report.failed += 1
        log.warning("schedule %s: tick %d created no task: %s", schedule.schedule_id, tick, reason)
        return ""
