"""Retries: TASK_COMPLETE / TASK_COMPLETE_BATCH schedule a failed attempt's retry per the task's
policy (backoff and jitter bounds), no_retry and the last attempt fail for good; TASK_RETRY (every
return code) sends a FAILED or CANCELLED task back to PENDING."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.lifecycle import RetryPolicy
from claudebench.store.tasks import Completion, TaskStore
from tests.invariants import assert_consistent, stream_events, task_hash
from tests.lua.conftest import FakeClock

POLICY = RetryPolicy(
    max_attempts=3, initial_backoff_ms=1_000, max_backoff_ms=1_500, multiplier=2.0, jitter=0.2
)


def test_backoff_follows_the_policy_within_the_jitter() -> None:
    assert [POLICY.backoff_ms(n, 0.5) for n in (1, 2, 3, 10)] == [1_000, 1_500, 1_500, 1_500]
    assert POLICY.backoff_ms(1, 0.0) == 800  # -20 %
    assert POLICY.backoff_ms(1, 0.999_999) == 1_200  # +20 % (rounded)
    assert RetryPolicy(max_attempts=5).backoff_ms(20, 0.5) == 300_000  # the 5 min default cap


async def claim_one(store: TaskStore, instances: InstanceStore, worker: str) -> dict[str, str]:
    await instances.register(worker, ["worker"], 5, {})
    (task,) = await store.claim(worker, 1)
    return task


async def test_failed_attempts_are_retried_with_backoff_then_fail(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    store._random = lambda: 0.5
    await store.create("flaky", 50, {}, task_id="t-1", retry=POLICY)
    assert (await task_hash(redis_client, keys.task("t-1")))["maxAttempts"] == "3"
    waits = []
    for attempt in (1, 2):
        await claim_one(store, instances, "w1")
        snapshot = await store.complete("t-1", "w1", "error", f"boom {attempt}")
        assert (snapshot["status"], snapshot["error"], snapshot["assignedTo"]) == (
            "scheduled",
            f"boom {attempt}",
            "",
        )
        waits.append(int(snapshot["runAt"]) - clock())
        assert await redis_client.zscore(keys.due, "t-1") == float(snapshot["runAt"])
        assert await redis_client.zcard(keys.held("w1")) == 0
        await assert_consistent(redis_client, keys)
        # The same completion again is a replay: the stored task, no second event.
        events = len(await stream_events(redis_client, keys))
        assert await store.complete("t-1", "w1", "error", f"boom {attempt}") == snapshot
        assert len(await stream_events(redis_client, keys)) == events
        clock.advance(waits[-1] - 1)
        await instances.heartbeat("w1")
        assert await store.claim("w1", 1) == []  # not before its time
        clock.advance(1)
    assert waits == [1_000, 1_500]
    await claim_one(store, instances, "w1")
    failed = await store.complete("t-1", "w1", "error", "boom 3")
    assert (failed["status"], failed["attempts"]) == ("failed", "3")
    types = [e["type"] for e in await stream_events(redis_client, keys) if e["type"] != "claimed"]
    assert types == ["created", "scheduled", "updated", "scheduled", "updated", "failed"]
    await assert_consistent(redis_client, keys)


async def test_no_retry_fails_at_once_and_a_batch_retries_too(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await store.create("a", 50, {}, task_id="t-1", retry=POLICY)
    await store.create("b", 40, {}, task_id="t-2", retry=POLICY)
    await instances.register("w1", ["worker"], 5, {})
    await store.claim("w1", 2)
    done = await store.complete("t-1", "w1", "error", "fatal", no_retry=True)
    assert done["status"] == "failed"
    (batched,) = await store.complete_many([Completion("t-2", "w1", "error", "flaky")])
    assert batched["status"] == "scheduled"
    await assert_consistent(redis_client, keys)


async def test_a_task_without_policy_fails_as_before(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await store.create("a", 50, {}, task_id="t-1")
    await claim_one(store, instances, "w1")
    assert (await store.complete("t-1", "w1", "error", "x"))["status"] == "failed"
    assert "maxAttempts" not in await task_hash(redis_client, keys.task("t-1"))


async def test_retry_task_every_code(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    with pytest.raises(DomainError) as missing:
        await store.retry("t-9", False)
    assert missing.value.code is ResultCode.NOT_FOUND
    await store.create("a", 50, {}, task_id="t-1")
    with pytest.raises(DomainError) as wrong:
        await store.retry("t-1", False)
    assert wrong.value.code is ResultCode.INVALID_TRANSITION
    assert "is pending; only a FAILED or CANCELLED task can be retried" in wrong.value.message

    await claim_one(store, instances, "w1")
    await store.complete("t-1", "w1", "error", "broken")
    clock.advance(5)
    again = await store.retry("t-1", False)
    assert (again["status"], again["attempts"], again["assignedTo"], again["updatedAt"]) == (
        "pending",
        "1",
        "",
        str(clock()),
    )
    assert "error" not in again
    assert "completedAt" not in again
    assert await redis_client.zrange(keys.pending, 0, -1) == ["t-1"]
    assert await redis_client.zcard(keys.status_index("failed")) == 0
    (event,) = [e for e in await stream_events(redis_client, keys) if e["type"] == "updated"]
    assert event["task_id"] == "t-1"
    await assert_consistent(redis_client, keys)

    await store.cancel("t-1", "not needed")
    reset = await store.retry("t-1", True)
    assert (reset["status"], reset["attempts"], reset["failovers"]) == ("pending", "0", "0")
    assert "cancelReason" not in reset
    await assert_consistent(redis_client, keys)
