"""Schedule ticks with a fake clock: the TaskService (with its schedule RPCs) built in-process on
stores that read the test's clock, so that days and DST changes pass in no time. Each tick creates
its task through CreateTask; concurrent tick runners create one task per tick; missed ticks are not
replayed; pause and resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2

from claudebench.api.dispatch import Dispatcher
from claudebench.api.http.rpc import HttpCallContext, RpcAbort
from claudebench.api.schedule_rpcs import TaskServiceWithSchedules
from claudebench.api.watch import TaskWatcher
from claudebench.events.hub import EventHub
from claudebench.keys import Keyspace
from claudebench.redis_connect import close as close_redis
from claudebench.redis_connect import connect
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.instances import FleetSettings, InstanceStore
from claudebench.store.schedules import ScheduleSettings, ScheduleStore
from claudebench.store.tasks import TaskStore, TaskStoreSettings
from claudebench.v1 import tasks_pb2 as pb
from tests.invariants import assert_consistent, assert_schedules_consistent
from tests.lua.conftest import FakeClock

MINUTE = 60_000
HOUR = 60 * MINUTE


def ms(text: str) -> int:
    """Epoch ms of an ISO UTC time ('2026-03-28T12:00')."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def hub(redis_server_url: str, keys: Keyspace) -> AsyncIterator[EventHub]:
    hub = EventHub(redis_server_url, keys.events)  # never started: only WatchTasks would use it
    yield hub
    await hub.close()


def make_service(
    executor: ScriptExecutor, client: aioredis.Redis, keys: Keyspace, clock: FakeClock, hub: EventHub
) -> TaskServiceWithSchedules:
    tasks = TaskStore(executor, client, keys, TaskStoreSettings(), clock)
    watcher = TaskWatcher(hub, client, keys.events, 100, 10, 1.0)
    schedules = ScheduleStore(executor, client, keys, ScheduleSettings(), clock)
    instances = InstanceStore(executor, client, keys, FleetSettings(), clock)
    return TaskServiceWithSchedules(tasks, watcher, instances, Dispatcher(hub), schedules=schedules)


@pytest.fixture
def service(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock, hub: EventHub
) -> TaskServiceWithSchedules:
    return make_service(executor, redis_client, keys, clock, hub)


async def call(service: TaskServiceWithSchedules, rpc: str, request: Any) -> Any:
    return await getattr(service, rpc)(request, HttpCallContext())


async def create(service: TaskServiceWithSchedules, **fields: Any) -> pb.Schedule:
    fields.setdefault("template", pb.CreateTaskRequest(text="nightly report", priority=70))
    response = await call(service, "CreateSchedule", pb.CreateScheduleRequest(schedule_id="s", **fields))
    return response.schedule  # type: ignore[no-any-return]


async def schedule_tasks(service: TaskServiceWithSchedules) -> list[pb.Task]:
    listed = await call(service, "ListTasks", pb.ListTasksRequest(page_size=1000))
    return [t for t in listed.tasks if t.id.startswith("s@")]


async def run_until(service: TaskServiceWithSchedules, clock: FakeClock, end_ms: int, step_ms: int) -> None:
    """The scheduler's job every step_ms of fake time up to end_ms."""
    while clock.now < end_ms:
        clock.advance(step_ms)
        await service.fire_due_schedules(clock.now)


async def test_cron_ticks_follow_local_time_across_both_dst_changes(
    service: TaskServiceWithSchedules, clock: FakeClock, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    # 02:30 every day in Berlin: on 2026-03-29 02:30 does not exist (clocks jump 02:00 -> 03:00), so it
    # runs at 03:00 CEST; on 2026-10-25 02:30 happens twice (03:00 -> 02:00), and it runs once.
    clock.now = ms("2026-03-27T12:00")
    created = await create(service, cron="30 2 * * *", time_zone="Europe/Berlin")
    assert created.next_run_time.ToMilliseconds() == ms("2026-03-28T01:30")  # 02:30 CET
    await run_until(service, clock, ms("2026-03-31T12:00"), 10 * MINUTE)
    spring = [t.create_time.ToMilliseconds() for t in await schedule_tasks(service)]
    assert spring == [
        ms("2026-03-28T01:30"),  # 02:30 CET
        ms("2026-03-29T01:00"),  # 03:00 CEST: 02:30 does not exist that night
        ms("2026-03-30T00:30"),  # 02:30 CEST
        ms("2026-03-31T00:30"),
    ]

    clock.now = ms("2026-10-24T12:00")
    await call(service, "PauseSchedule", pb.PauseScheduleRequest(schedule_id="s"))
    await call(service, "ResumeSchedule", pb.ResumeScheduleRequest(schedule_id="s"))
    await run_until(service, clock, ms("2026-10-26T12:00"), 10 * MINUTE)
    autumn = [t.create_time.ToMilliseconds() for t in await schedule_tasks(service)][4:]
    assert autumn == [ms("2026-10-25T00:30"), ms("2026-10-26T01:30")]  # 02:30 CEST once, then CET

    tasks = await schedule_tasks(service)
    assert [t.id for t in tasks] == [f"s@{t.create_time.ToMilliseconds()}" for t in tasks]
    assert {(t.text, t.priority) for t in tasks} == {("nightly report", 70)}
    await assert_consistent(redis_client, keys)
    await assert_schedules_consistent(redis_client, keys)


async def test_hourly_cron_runs_every_real_hour_through_the_autumn_change(
    service: TaskServiceWithSchedules, clock: FakeClock
) -> None:
    clock.now = ms("2026-10-24T22:30")
    await create(service, cron="0 * * * *", time_zone="Europe/Berlin")
    await run_until(service, clock, ms("2026-10-25T04:30"), MINUTE)
    times = [t.create_time.ToMilliseconds() for t in await schedule_tasks(service)]
    # Local 01:00, 02:00 (CEST), 02:00 (CET), 03:00, ...: six runs in six real hours, none twice.
    assert times == [ms("2026-10-24T23:00") + i * HOUR for i in range(6)]


async def test_interval_ticks_keep_their_phase_and_ignore_time_zones(
    service: TaskServiceWithSchedules, clock: FakeClock
) -> None:
    clock.now = ms("2026-03-28T23:10")
    created = await create(service, interval=duration_pb2.Duration(seconds=3600))
    assert created.next_run_time.ToMilliseconds() == ms("2026-03-29T00:10")
    await run_until(service, clock, ms("2026-03-29T04:00"), 45_000)
    times = [t.create_time.ToMilliseconds() for t in await schedule_tasks(service)]
    # Each tick is created by the first scheduler pass after its time (passes every 45 s).
    ticks = [int(t.id.split("@")[1]) for t in await schedule_tasks(service)]
    assert ticks == [ms("2026-03-29T00:10") + i * HOUR for i in range(4)]
    assert all(0 <= created_at - tick < 45_000 for created_at, tick in zip(times, ticks, strict=True))
    got = (await call(service, "GetSchedule", pb.GetScheduleRequest(schedule_id="s"))).schedule
    assert got.last_run_time.ToMilliseconds() == ticks[-1]
    assert got.last_task_id == f"s@{ticks[-1]}"
    assert got.next_run_time.ToMilliseconds() == ticks[-1] + HOUR


async def test_missed_ticks_are_not_replayed_and_the_next_one_runs(
    service: TaskServiceWithSchedules, clock: FakeClock
) -> None:
    clock.now = ms("2026-05-01T00:00")
    await create(service, cron="*/5 * * * *")
    await run_until(service, clock, ms("2026-05-01T00:05"), MINUTE)
    assert len(await schedule_tasks(service)) == 1
    # No replica runs for three hours (36 ticks missed); then the scheduler runs again.
    clock.now = ms("2026-05-01T03:02:30")
    report = await service.fire_due_schedules(clock.now)
    assert (report.created, report.skipped) == ([], 1)
    got = (await call(service, "GetSchedule", pb.GetScheduleRequest(schedule_id="s"))).schedule
    assert got.next_run_time.ToMilliseconds() == ms("2026-05-01T03:05")
    assert got.last_task_id == f"s@{ms('2026-05-01T00:05')}"
    await run_until(service, clock, ms("2026-05-01T03:06"), 30_000)
    ticks = [int(t.id.split("@")[1]) for t in await schedule_tasks(service)]
    assert ticks == [ms("2026-05-01T00:05"), ms("2026-05-01T03:05")]


async def test_a_tick_late_within_the_grace_still_runs_once(
    service: TaskServiceWithSchedules, clock: FakeClock
) -> None:
    clock.now = ms("2026-05-01T00:00")
    await create(service, interval=duration_pb2.Duration(seconds=10))
    clock.now = ms("2026-05-01T00:00:55")  # ticks at :10 ... :50 due; :10 is 45 s late (< 60 s)
    report = await service.fire_due_schedules(clock.now)
    assert report.created == [f"s@{ms('2026-05-01T00:00:10')}"]
    got = (await call(service, "GetSchedule", pb.GetScheduleRequest(schedule_id="s"))).schedule
    assert got.next_run_time.ToMilliseconds() == ms("2026-05-01T00:01:00")


def test_the_grace_grows_with_a_slow_scheduler() -> None:
    assert ScheduleSettings.for_scheduler(1.0).late_grace_ms == 60_000
    assert ScheduleSettings.for_scheduler(30.0).late_grace_ms == 150_000  # five intervals


async def test_pause_stops_ticks_and_resume_starts_from_the_next_run_after_now(
    service: TaskServiceWithSchedules, clock: FakeClock
) -> None:
    clock.now = ms("2026-05-01T00:00")
    await create(service, interval=duration_pb2.Duration(seconds=60))
    await run_until(service, clock, ms("2026-05-01T00:02:30"), 30_000)
    assert len(await schedule_tasks(service)) == 2
    paused = (await call(service, "PauseSchedule", pb.PauseScheduleRequest(schedule_id="s"))).schedule
    assert paused.paused
    assert not paused.HasField("next_run_time")
    await run_until(service, clock, ms("2026-05-01T01:00"), 30_000)
    assert len(await schedule_tasks(service)) == 2
    clock.now = ms("2026-05-01T01:00:20")
    resumed = (await call(service, "ResumeSchedule", pb.ResumeScheduleRequest(schedule_id="s"))).schedule
    assert not resumed.paused
    assert resumed.next_run_time.ToMilliseconds() == ms("2026-05-01T01:01:20")
    await run_until(service, clock, ms("2026-05-01T01:02:30"), 10_000)
    ticks = [int(t.id.split("@")[1]) for t in await schedule_tasks(service)][2:]
    assert ticks == [ms("2026-05-01T01:01:20"), ms("2026-05-01T01:02:20")]


async def test_concurrent_tick_runners_create_one_task_per_tick(
    executor: ScriptExecutor,
    redis_server_url: str,
    keys: Keyspace,
    clock: FakeClock,
    hub: EventHub,
    redis_client: aioredis.Redis,
) -> None:
    """Eight runners, each with its own Redis connection pool, fire every tick at once."""
    clients = [
        cast(aioredis.Redis, connect(redis_server_url, timeout_s=5.0, max_connections=8)) for _ in range(8)
    ]
    try:
        runners = [make_service(ScriptExecutor(c, executor.scripts), c, keys, clock, hub) for c in clients]
        clock.now = ms("2026-05-01T00:00")
        for i in range(5):
            template = pb.CreateTaskRequest(text=f"job {i}")
            request = pb.CreateScheduleRequest(
                schedule_id=f"r{i}", interval=duration_pb2.Duration(seconds=10), template=template
            )
            await call(runners[0], "CreateSchedule", request)
        reports = []
        for _ in range(30):  # 30 passes of 5 s: 15 ticks per schedule
            clock.advance(5_000)
            reports += await asyncio.gather(*(r.fire_due_schedules(clock.now) for r in runners))
        listed = await call(runners[0], "ListTasks", pb.ListTasksRequest(page_size=1000))
        ids = [t.id for t in listed.tasks]
        expected = {f"r{i}@{ms('2026-05-01T00:00') + k * 10_000}" for i in range(5) for k in range(1, 16)}
        assert sorted(ids) == sorted(expected)  # each tick once, none missing
        assert sum(len(r.created) for r in reports) == len(expected)
        assert sum(r.already_handled for r in reports) > 0  # the runners did race
        await assert_consistent(redis_client, keys)
        await assert_schedules_consistent(redis_client, keys)
    finally:
        for c in clients:
            await close_redis(c)


async def test_a_template_refused_at_tick_time_creates_nothing_and_moves_on(
    service: TaskServiceWithSchedules, clock: FakeClock, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    clock.now = ms("2026-05-01T00:00")
    await create(service, interval=duration_pb2.Duration(seconds=60))
    # A template stored by another server version that this one refuses (text too long).
    await redis_client.hset(keys.schedule("s"), "template", '{"text":"' + "x" * 600 + '"}')
    clock.now = ms("2026-05-01T00:01")
    report = await service.fire_due_schedules(clock.now)
    assert (report.created, report.failed) == ([], 1)
    assert await schedule_tasks(service) == []
    got = (await call(service, "GetSchedule", pb.GetScheduleRequest(schedule_id="s"))).schedule
    assert got.next_run_time.ToMilliseconds() == ms("2026-05-01T00:02")


async def test_template_delay_timeout_and_retry_apply_to_each_ticks_task(
    service: TaskServiceWithSchedules, clock: FakeClock
) -> None:
    """The tick creates through CreateTask, so what CreateTask honours a template carries."""
    clock.now = ms("2026-05-01T00:00")
    template = pb.CreateTaskRequest(
        text="later",
        delay=duration_pb2.Duration(seconds=600),
        timeout=duration_pb2.Duration(seconds=30),
        retry=pb.RetryPolicy(max_attempts=4),
    )
    await create(service, interval=duration_pb2.Duration(seconds=60), template=template)
    clock.now = ms("2026-05-01T00:01:05")
    assert (await service.fire_due_schedules(clock.now)).created == [f"s@{ms('2026-05-01T00:01')}"]
    (task,) = await schedule_tasks(service)
    assert task.status == pb.TASK_STATUS_SCHEDULED
    assert task.run_at.ToMilliseconds() == clock.now + 600_000
    assert task.timeout.seconds == 30
    assert task.max_attempts == 4
    got = (await call(service, "GetSchedule", pb.GetScheduleRequest(schedule_id="s"))).schedule
    assert got.template == template


async def test_a_template_queue_puts_each_ticks_task_in_that_queue(
    service: TaskServiceWithSchedules, clock: FakeClock
) -> None:
    """Named queues (merged): a template's queue is the queue of every tick's task."""
    clock.now = ms("2026-05-01T00:00")
    template = pb.CreateTaskRequest(text="gpu job", queue="gpu")
    await create(service, interval=duration_pb2.Duration(seconds=60), template=template)
    clock.now = ms("2026-05-01T00:01:05")
    assert (await service.fire_due_schedules(clock.now)).created == [f"s@{ms('2026-05-01T00:01')}"]
    (task,) = await schedule_tasks(service)
    assert task.queue == "gpu"
    assert task.status == pb.TASK_STATUS_PENDING
    listed = await call(service, "ListTasks", pb.ListTasksRequest(queue="gpu"))
    assert [t.id for t in listed.tasks] == [task.id]


async def test_a_broken_schedule_does_not_hold_up_the_others(
    service: TaskServiceWithSchedules, clock: FakeClock, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    clock.now = ms("2026-05-01T00:00")
    for schedule_id in ("a", "b"):
        request = pb.CreateScheduleRequest(
            schedule_id=schedule_id,
            interval=duration_pb2.Duration(seconds=60),
            template=pb.CreateTaskRequest(text="x"),
        )
        await call(service, "CreateSchedule", request)
    # Schedule a's stored template is not even JSON (written by hand, or corrupted): a bug of data.
    await redis_client.hset(keys.schedule("a"), "template", "{")
    clock.now = ms("2026-05-01T00:01")
    report = await service.fire_due_schedules(clock.now)
    assert (report.created, report.failed) == ([f"b@{clock.now}"], 1)


async def test_a_deleted_schedule_stops(service: TaskServiceWithSchedules, clock: FakeClock) -> None:
    clock.now = ms("2026-05-01T00:00")
    await create(service, interval=duration_pb2.Duration(seconds=60))
    await call(service, "DeleteSchedule", pb.DeleteScheduleRequest(schedule_id="s"))
    await run_until(service, clock, ms("2026-05-01T00:10"), 30_000)
    assert await schedule_tasks(service) == []
    with pytest.raises(RpcAbort) as missing:
        await call(service, "GetSchedule", pb.GetScheduleRequest(schedule_id="s"))
    assert missing.value.details == "Schedule s does not exist"
