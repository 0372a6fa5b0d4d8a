"""Named queues at the script level, with a clock the test controls: QUEUE_CONFIGURE's codes, the
exact sliding-window rate limit, the claim's queue codes (NOT_SUBSCRIBED, QUEUES_CHANGED) and the
WRONG_QUEUE retry of single-task scripts, the keyspace of a named queue, fairness turns."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.lifecycle import LifecycleSettings, LifecycleStore, RetryPolicy
from claudebench.store.queues import QueueSettings, QueueStore
from claudebench.store.tasks import NewTask, TaskStore, TaskStoreSettings
from tests.invariants import assert_consistent, entries
from tests.lua.conftest import TTL_MS, FakeClock
from tests.lua.test_task_claim import claim_from


@pytest.fixture
def queue_store(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> QueueStore:
    from claudebench.store.queues import QueueSettings

    return QueueStore(executor, redis_client, keys, QueueSettings(1000), clock)


async def test_configure_pause_resume_codes_and_state(
    queue_store: QueueStore, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    with pytest.raises(DomainError) as missing:
        await queue_store.pause("nope")
    assert missing.value.code is ResultCode.NOT_FOUND
    with pytest.raises(DomainError) as invalid:
        await queue_store.configure("q", {"rateLimit": 5})
    assert invalid.value.code is ResultCode.INVALID_CONFIG
    assert await redis_client.exists(keys.queue("q", "config"), keys.queues) == 0  # nothing written

    info = await queue_store.configure("q", {"rateLimit": 5, "rateWindowMs": 1000, "concurrencyLimit": 2})
    assert info.settings == {"rateLimit": "5", "rateWindowMs": "1000", "concurrencyLimit": "2"}
    assert await redis_client.zrange(keys.queues, 0, -1, withscores=True) == [("q", float(clock()))]
    assert (await queue_store.configure("q", {"concurrencyLimit": 0})).settings == {
        "rateLimit": "5",
        "rateWindowMs": "1000",
    }
    assert (await queue_store.pause("q")).settings["paused"] == "1"
    await queue_store.pause("q")
    assert "paused" not in (await queue_store.resume("q")).settings
    await queue_store.pause("default")  # the default queue always exists
    events = [(f["type"], f["data"]) for _, f in await entries(redis_client, keys.system_events)]
    assert events == [
        ("queue.paused", '{"queue":"q"}'),
        ("queue.resumed", '{"queue":"q"}'),
        ("queue.paused", '{"queue":"default"}'),
    ]
    assert await redis_client.hgetall(keys.queue("default", "config")) == {"paused": "1"}
    assert keys.queue("default", "pending") == keys.pending == f"{keys.prefix}:queue:tasks:pending"
    assert keys.queue("gpu", "pending") == f"{keys.prefix}:queue:gpu:pending"
    plain = Keyspace()
    assert (plain.pending, plain.queue("gpu", "rate")) == ("cb:queue:tasks:pending", "cb:queue:gpu:rate")


async def test_rate_limit_is_exact_in_a_sliding_window(
    store: TaskStore, instances: InstanceStore, queue_store: QueueStore, clock: FakeClock
) -> None:
    await queue_store.configure("api", {"rateLimit": 3, "rateWindowMs": 1000})
    for i in range(10):
        await store.create(f"t{i}", 50, {}, task_id=f"t-{i}", queue="api")
    await instances.register("w1", ["worker"], 100, {}, ["api"])
    start = clock()

    first = await store.claim_from("w1", 2)
    assert [t["id"] for t in first.tasks] == ["t-0", "t-1"]
    clock.advance(400)
    second = await store.claim_from("w1", 5)  # only one left in the window
    assert [t["id"] for t in second.tasks] == ["t-2"]
    assert second.open_at_ms == start + 1000  # the window's oldest claim leaves it then
    clock.advance(599)  # 999 ms after the first two claims: still closed
    closed = await store.claim_from("w1", 5)
    assert (closed.tasks, closed.open_at_ms) == ([], start + 1000)
    clock.advance(1)  # the first two leave the window; the third (at +400) is still in it
    reopened = await store.claim_from("w1", 5)
    assert [t["id"] for t in reopened.tasks] == ["t-3", "t-4"]
    assert reopened.open_at_ms == start + 1400
    clock.advance(400)
    assert [t["id"] for t in await store.claim("w1", 5)] == ["t-5"]


async def test_claim_queue_codes(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    await instances.register("w1", ["worker"], 10, {}, ["gpu", "cpu"])
    await store.create("g", 50, {}, task_id="t-g", queue="gpu")

    unsubscribed = await claim_from(executor, keys, clock(), "w1", 1, [], queue="other", explicit=True)
    assert unsubscribed.code is ResultCode.NOT_SUBSCRIBED
    changed = await claim_from(executor, keys, clock(), "w1", 1, [], queue="gpu")
    assert (changed.code, json.loads(changed.payload)) == (ResultCode.QUEUES_CHANGED, ["gpu", "cpu"])
    explicit = await claim_from(executor, keys, clock(), "w1", 1, ["t-g"], queue="gpu", explicit=True)
    assert [t["id"] for t in json.loads(explicit.payload)["tasks"]] == ["t-g"]
    # The store learns the registered queues from QUEUES_CHANGED and claims from them.
    await store.create("c", 50, {}, task_id="t-c", queue="cpu")
    fresh = TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock)
    assert [t["id"] for t in await fresh.claim("w1", 5)] == ["t-c"]
    await assert_consistent(redis_client, keys)


async def test_single_task_scripts_retry_with_the_tasks_queue(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    """Another store (no memory of the task) guesses the default queue: the script answers
    WRONG_QUEUE with the task's queue and the store calls again with its keys."""
    await store.create("x", 50, {}, task_id="t-1", queue="gpu")
    await store.create("y", 50, {}, task_id="t-2", queue="gpu")
    await instances.register("w1", ["worker"], 10, {}, ["gpu"])
    other = TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock)
    assert (await other.assign("t-1", "w1"))["queue"] == "gpu"
    other = TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock)
    assert (await other.release("t-1", "w1", "later"))["status"] == "pending"
    other = TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock)
    assert (await other.update("t-1", None, 80, None, {}))["priority"] == "80"
    assert await redis_client.zrange(keys.queue("gpu", "pending"), 0, 0) == ["t-1"]
    other = TaskStore(executor, redis_client, keys, TaskStoreSettings(100_000, TTL_MS), clock)
    await other.delete("t-2")
    assert await redis_client.zrange(keys.queue("gpu", "all"), 0, -1) == ["t-1"]
    await instances.unregister("w1")
    await assert_consistent(redis_client, keys)


async def test_fairness_turns_and_backlog(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    tenant_a, tenant_b = {"fairness_key": '"A"'}, {"fairness_key": '"B"'}
    for i in range(3):
        await store.create(f"a{i}", 50, tenant_a, task_id=f"a-{i}", queue="f")
    await store.create("plain", 50, {}, task_id="p-0", queue="f")
    await store.create("b0", 50, tenant_b, task_id="b-0", queue="f")
    # One turn per key in the pending ZSET; the key's other tasks wait in the backlog.
    assert await redis_client.zrange(keys.queue("f", "pending"), 0, -1) == ["a-0", "p-0", "b-0"]
    assert await redis_client.zcard(keys.queue("f", "backlog")) == 2
    assert await redis_client.hgetall(keys.queue("f", "fair")) == {'"A"': "1", '"B"': "1"}
    await assert_consistent(redis_client, keys)
    await instances.register("w1", ["worker"], 10, {}, ["f"])
    order = [t["id"] for _ in range(5) for t in await store.claim("w1", 1)]
    assert order == ["a-0", "p-0", "b-0", "a-1", "a-2"]
    await store.release("a-1", "w1", "")  # back at its place, beside A's turn
    await store.delete("a-1")
    assert await redis_client.hgetall(keys.queue("f", "fair")) == {}
    await assert_consistent(redis_client, keys)


async def test_scheduled_and_timed_out_tasks_come_back_to_their_own_queue(
    store: TaskStore,
    instances: InstanceStore,
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    clock: FakeClock,
) -> None:
    lifecycle = LifecycleStore(executor, redis_client, keys, LifecycleSettings(), clock)
    await store.create("later", 50, {}, task_id="t-later", queue="gpu", delay_ms=1000, timeout_ms=500)
    assert (await QueueStore(executor, redis_client, keys, QueueSettings(), clock).get("gpu")).counts[
        "scheduled"
    ] == 1
    await assert_consistent(redis_client, keys)
    clock.advance(1000)
    assert (await lifecycle.promote_due(clock())).promoted == 1
    assert await redis_client.zrange(keys.queue("gpu", "pending"), 0, -1) == ["t-later"]
    assert await redis_client.zcard(keys.pending) == 0
    await instances.register("w1", ["worker"], 10, {}, ["gpu"])
    assert [t["id"] for t in await store.claim("w1", 1)] == ["t-later"]
    clock.advance(501)
    await instances.heartbeat("w1")
    assert (await lifecycle.expire_leases(clock())).requeued == 1
    assert await redis_client.zrange(keys.queue("gpu", "pending"), 0, -1) == ["t-later"]
    await assert_consistent(redis_client, keys)


async def test_task_defaults_come_from_the_task_then_the_queue_then_the_server(
    executor: ScriptExecutor,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    queue_store: QueueStore,
    clock: FakeClock,
) -> None:
    settings = TaskStoreSettings(100_000, TTL_MS, default_timeout_ms=5000, default_max_attempts=3)
    store = TaskStore(executor, redis_client, keys, settings, clock)
    policy = RetryPolicy(2, 10, 20, 1.0, 0.0)
    await queue_store.configure("q", {"defaultTimeoutMs": 7000, "defaultRetry": policy.to_json()})
    server = await store.create("a", 50, {}, queue="default")
    queue = await store.create("b", 50, {}, queue="q")
    own = await store.create("c", 50, {}, queue="q", timeout_ms=1000, retry=RetryPolicy(4))
    assert (server["timeoutMs"], server["maxAttempts"]) == ("5000", "3")
    assert RetryPolicy.from_json(server["retry"]).max_attempts == 3
    assert (queue["timeoutMs"], queue["maxAttempts"], queue["retry"]) == ("7000", "2", policy.to_json())
    assert (own["timeoutMs"], own["maxAttempts"]) == ("1000", "4")
    batch = await store.create_many(
        [NewTask("e", 50, {}, queue="q"), NewTask("f", 50, {}, timeout_ms=0, queue="q"), NewTask("g", 50, {})]
    )
    assert [(t.get("timeoutMs"), t.get("maxAttempts")) for t in batch] == [
        ("7000", "2"),
        (None, "2"),
        ("5000", "3"),
    ]
    await queue_store.configure("q", {"defaultTimeoutMs": 0, "defaultRetry": ""})  # cleared
    assert (await store.create("d", 50, {}, queue="q"))["timeoutMs"] == "5000"
