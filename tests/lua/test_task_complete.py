"""TASK_COMPLETE: result and error outcomes, holder check, idempotent retry, state."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore
from tests.invariants import assert_consistent, stream_events
from tests.lua.conftest import FakeClock


@pytest.fixture
async def held(store: TaskStore, instances: InstanceStore) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await instances.register("w2", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    await store.create("b", 50, {}, task_id="t-2")
    await store.claim("w1", 2)


@pytest.mark.usefixtures("held")
async def test_result_completes_and_error_fails(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    now = clock.advance(100)
    done = await store.complete("t-1", "w1", "result", "false")
    failed = await store.complete("t-2", "w1", "error", "disk full")

    # A falsy result is still a success: only the error outcome fails a task.
    assert (done["status"], done["result"], done["completedAt"]) == ("completed", "false", str(now))
    assert (failed["status"], failed["error"]) == ("failed", "disk full")
    assert "result" not in failed
    assert await redis_client.zcard(keys.held("w1")) == 0
    assert await redis_client.zrange(keys.status_index("completed"), 0, -1) == ["t-1"]
    assert await redis_client.zrange(keys.status_index("failed"), 0, -1) == ["t-2"]
    events = (await stream_events(redis_client, keys))[-2:]
    assert [(e["type"], e["task_id"], e["instance_id"]) for e in events] == [
        ("completed", "t-1", "w1"),
        ("failed", "t-2", "w1"),
    ]
    assert json.loads(events[0]["task"]) == done
    await assert_consistent(redis_client, keys)


@pytest.mark.usefixtures("held")
async def test_retry_by_the_holder_is_idempotent(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    first = await store.complete("t-1", "w1", "result", '{"n":1}')
    events = len(await stream_events(redis_client, keys))
    clock.advance(1000)

    again = await store.complete("t-1", "w1", "result", '{"n":1}')

    assert again == first
    assert len(await stream_events(redis_client, keys)) == events


@pytest.mark.usefixtures("held")
async def test_a_second_completion_with_another_outcome_is_refused(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    first = await store.complete("t-1", "w1", "result", '{"n":1}')
    events = len(await stream_events(redis_client, keys))

    for call in (
        store.complete("t-1", "w1", "result", '{"n":2}'),
        store.complete("t-1", "w1", "error", "boom"),
        store.complete("t-1", "w1", "error", '{"n":1}'),
    ):
        with pytest.raises(DomainError) as refused:
            await call
        assert refused.value.code is ResultCode.ALREADY_FINISHED
        assert "another outcome" in refused.value.message

    assert await store.get("t-1") == first
    assert len(await stream_events(redis_client, keys)) == events


@pytest.mark.usefixtures("held")
async def test_only_the_holder_may_complete(
    store: TaskStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    with pytest.raises(DomainError) as other:
        await store.complete("t-1", "w2", "result", "1")
    assert other.value.code is ResultCode.NOT_HELD
    assert other.value.message == "Task t-1 is not held by w2 (status in_progress, held by w1)"

    await store.complete("t-1", "w1", "result", "1")
    with pytest.raises(DomainError) as finished:
        await store.complete("t-1", "w2", "result", "1")
    assert finished.value.code is ResultCode.ALREADY_FINISHED

    with pytest.raises(DomainError) as missing:
        await store.complete("t-9", "w1", "result", "1")
    assert missing.value.code is ResultCode.NOT_FOUND
    await assert_consistent(redis_client, keys)


async def test_a_pending_task_cannot_be_completed(store: TaskStore, instances: InstanceStore) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {}, task_id="t-1")
    with pytest.raises(DomainError) as pending:
        await store.complete("t-1", "w1", "result", "1")
    assert pending.value.code is ResultCode.NOT_HELD
    assert "held by nobody" in pending.value.message
