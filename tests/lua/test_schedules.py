"""SCHEDULE_CREATE, SCHEDULE_DELETE, SCHEDULE_PAUSE, SCHEDULE_RESUME, SCHEDULE_ADVANCE: every
return code in their headers, with the whole resulting Redis state."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.schedule_times import Spec
from claudebench.store.schedules import ScheduleSettings, ScheduleStore
from tests.invariants import assert_schedules_consistent, scored, task_hash
from tests.lua.conftest import START_MS, FakeClock

MINUTE = 60_000
EVERY_MINUTE = Spec(interval_ms=MINUTE)
TEMPLATE = '{"text":"report"}'


@pytest.fixture
def schedules(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> ScheduleStore:
    return ScheduleStore(executor, redis_client, keys, ScheduleSettings(), clock)


async def test_create_running_writes_the_hash_and_both_indexes(
    schedules: ScheduleStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    created = await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=False)
    cron = await schedules.create("s2", Spec(cron="0 9 * * 1", time_zone="Europe/Berlin"), TEMPLATE, False)

    assert await task_hash(redis_client, keys.schedule("s1")) == {
        "id": "s1",
        "seq": "1",
        "intervalMs": str(MINUTE),
        "timeZone": "",
        "template": TEMPLATE,
        "paused": "0",
        "nextRun": str(START_MS + MINUTE),
        "lastTaskId": "",
        "createdAt": str(START_MS),
        "updatedAt": str(START_MS),
    }
    assert (created.seq, created.next_run_ms, created.paused) == (1, START_MS + MINUTE, False)
    # 2023-11-14 22:13:20 UTC is a Tuesday: the next Monday 09:00 in Berlin (CET, UTC+1) is 08:00 UTC.
    assert cron.next_run_ms == 1_700_467_200_000
    assert (await task_hash(redis_client, keys.schedule("s2")))["cron"] == "0 9 * * 1"
    assert await scored(redis_client, keys.schedules_all) == {"s1": 1.0, "s2": 2.0}
    assert await scored(redis_client, keys.schedules_due) == {
        "s1": START_MS + MINUTE,
        "s2": 1_700_467_200_000,
    }
    assert await redis_client.get(keys.schedule_seq) == "2"
    await assert_schedules_consistent(redis_client, keys)


async def test_create_paused_is_not_due_and_has_no_next_run(
    schedules: ScheduleStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    created = await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=True)
    stored = await task_hash(redis_client, keys.schedule("s1"))
    assert stored["paused"] == "1"
    assert "nextRun" not in stored
    assert (created.paused, created.next_run_ms) == (True, None)
    assert await scored(redis_client, keys.schedules_due) == {}
    await assert_schedules_consistent(redis_client, keys)


async def test_create_of_an_existing_id_changes_nothing(
    schedules: ScheduleStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=False)
    before = await task_hash(redis_client, keys.schedule("s1"))
    with pytest.raises(DomainError) as refused:
        await schedules.create("s1", Spec(interval_ms=5_000), '{"text":"other"}', paused=True)
    assert refused.value.code is ResultCode.ALREADY_EXISTS
    assert refused.value.message == "Schedule s1 already exists"
    assert await task_hash(redis_client, keys.schedule("s1")) == before
    assert await redis_client.get(keys.schedule_seq) == "1"


async def test_delete_removes_the_hash_and_index_entries_then_not_found(
    schedules: ScheduleStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=False)
    await schedules.create("s2", EVERY_MINUTE, TEMPLATE, paused=False)
    await schedules.delete("s1")
    assert not await redis_client.exists(keys.schedule("s1"))
    assert await scored(redis_client, keys.schedules_all) == {"s2": 2.0}
    assert set(await scored(redis_client, keys.schedules_due)) == {"s2"}
    with pytest.raises(DomainError) as missing:
        await schedules.delete("s1")
    assert (missing.value.code, missing.value.message) == (ResultCode.NOT_FOUND, "Schedule s1 does not exist")
    await assert_schedules_consistent(redis_client, keys)


async def test_pause_leaves_the_due_index_and_pausing_again_changes_nothing(
    schedules: ScheduleStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=False)
    clock.advance(5)
    paused = await schedules.pause("s1")
    stored = await task_hash(redis_client, keys.schedule("s1"))
    assert (stored["paused"], stored["updatedAt"], "nextRun" in stored) == ("1", str(START_MS + 5), False)
    assert (paused.paused, paused.next_run_ms) == (True, None)
    assert await scored(redis_client, keys.schedules_due) == {}
    clock.advance(5)
    assert await schedules.pause("s1") == paused
    assert await task_hash(redis_client, keys.schedule("s1")) == stored
    with pytest.raises(DomainError) as missing:
        await schedules.pause("nope")
    assert missing.value.code is ResultCode.NOT_FOUND
    await assert_schedules_consistent(redis_client, keys)


async def test_resume_restarts_from_now_and_resuming_a_running_one_changes_nothing(
    schedules: ScheduleStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=True)
    now = clock.advance(10 * MINUTE + 7)
    resumed = await schedules.resume("s1")
    assert (resumed.paused, resumed.next_run_ms) == (False, now + MINUTE)
    assert await scored(redis_client, keys.schedules_due) == {"s1": now + MINUTE}
    stored = await task_hash(redis_client, keys.schedule("s1"))
    clock.advance(1_000)
    assert await schedules.resume("s1") == resumed
    assert await task_hash(redis_client, keys.schedule("s1")) == stored
    with pytest.raises(DomainError) as missing:
        await schedules.resume("nope")
    assert missing.value.code is ResultCode.NOT_FOUND
    await assert_schedules_consistent(redis_client, keys)


async def test_resume_of_a_schedule_replaced_meanwhile_is_stale(
    schedules: ScheduleStore, executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=True)
    before = await task_hash(redis_client, keys.schedule("s1"))
    result = await executor.run(
        "SCHEDULE_RESUME",
        keys={"schedule": keys.schedule("s1"), "due": keys.schedules_due},
        args={"schedule_id": "s1", "expected_seq": 99, "next_run_ms": 1, "now_ms": START_MS},
    )
    assert result.code is ResultCode.STALE
    assert result.payload == "Schedule s1 was deleted and created again meanwhile"
    assert await task_hash(redis_client, keys.schedule("s1")) == before
    assert await scored(redis_client, keys.schedules_due) == {}


async def test_advance_records_the_tick_and_moves_to_the_next_run(
    schedules: ScheduleStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    schedule = await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=False)
    tick = START_MS + MINUTE
    clock.advance(MINUTE + 40)
    assert await schedules.advance(schedule, tick, tick + MINUTE, f"s1@{tick}") is True
    stored = await task_hash(redis_client, keys.schedule("s1"))
    assert (stored["lastRun"], stored["lastTaskId"], stored["nextRun"], stored["updatedAt"]) == (
        str(tick),
        f"s1@{tick}",
        str(tick + MINUTE),
        str(clock.now),
    )
    assert await scored(redis_client, keys.schedules_due) == {"s1": tick + MINUTE}
    # A skipped tick (task_id '') moves on without recording a run.
    assert await schedules.advance(schedule, tick + MINUTE, tick + 3 * MINUTE, "") is True
    stored = await task_hash(redis_client, keys.schedule("s1"))
    assert (stored["lastRun"], stored["lastTaskId"], stored["nextRun"]) == (
        str(tick),
        f"s1@{tick}",
        str(tick + 3 * MINUTE),
    )
    await assert_schedules_consistent(redis_client, keys)


async def test_advance_of_a_tick_already_handled_paused_or_replaced_is_stale(
    schedules: ScheduleStore, executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    schedule = await schedules.create("s1", EVERY_MINUTE, TEMPLATE, paused=False)
    tick = START_MS + MINUTE
    assert await schedules.advance(schedule, tick, tick + MINUTE, f"s1@{tick}") is True
    after_first = await task_hash(redis_client, keys.schedule("s1"))

    def advance_args(seq: int, tick_ms: int) -> dict[str, str | int]:
        return {
            "schedule_id": "s1",
            "expected_seq": seq,
            "tick_ms": tick_ms,
            "next_run_ms": tick_ms + 5 * MINUTE,
            "task_id": f"s1@{tick_ms}",
            "now_ms": START_MS,
        }

    schedule_keys = {"schedule": keys.schedule("s1"), "due": keys.schedules_due}
    again = await executor.run("SCHEDULE_ADVANCE", keys=schedule_keys, args=advance_args(1, tick))
    assert (again.code, again.payload) == (ResultCode.STALE, f"Schedule s1 is no longer due at {tick}")
    replaced = await executor.run("SCHEDULE_ADVANCE", keys=schedule_keys, args=advance_args(2, tick + MINUTE))
    assert replaced.code is ResultCode.STALE
    assert await task_hash(redis_client, keys.schedule("s1")) == after_first

    await schedules.pause("s1")
    paused = await executor.run("SCHEDULE_ADVANCE", keys=schedule_keys, args=advance_args(1, tick + MINUTE))
    assert paused.code is ResultCode.STALE
    assert await scored(redis_client, keys.schedules_due) == {}

    await schedules.delete("s1")
    gone = await executor.run("SCHEDULE_ADVANCE", keys=schedule_keys, args=advance_args(1, tick + MINUTE))
    assert (gone.code, gone.payload) == (ResultCode.NOT_FOUND, "Schedule s1 does not exist")
    assert not await redis_client.exists(keys.schedule("s1"))
    await assert_schedules_consistent(redis_client, keys)
