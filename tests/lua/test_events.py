"""The task event stream: trimmed to its retention, and every entry decodes to a TaskEvent."""

from __future__ import annotations

import redis.asyncio as aioredis

from claudebench.api.codec import event_from_entry
from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskStore, TaskStoreSettings
from claudebench.v1 import tasks_pb2 as pb
from tests.invariants import entries
from tests.lua.conftest import TTL_MS, FakeClock


async def test_stream_is_trimmed_to_about_its_retention(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> None:
    small = TaskStore(executor, redis_client, keys, TaskStoreSettings(100, TTL_MS), clock)
    for i in range(1000):
        await small.create(f"task {i}", 50, {}, task_id=f"t-{i}")
    length = await redis_client.xlen(keys.events)
    # MAXLEN ~ trims whole stream nodes (100 entries each by default): never below the retention,
    # never more than one node above it.
    assert 100 <= length <= 200


async def test_every_event_decodes(
    store: TaskStore, instances: InstanceStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await instances.register("w1", ["worker"], 5, {})
    await store.create("a", 50, {"k": "1"}, task_id="t-1")
    await store.create("b", 50, {}, task_id="t-2")
    await store.claim("w1", 1)
    await store.assign("t-2", "w1")
    await store.update("t-1", "a2", None, None, {})
    await store.release("t-2", "w1", "")
    await store.complete("t-1", "w1", "result", '{"x":[1,2]}')
    await store.delete("t-2")

    events = [event_from_entry(i, f) for i, f in await entries(redis_client, keys.events)]

    assert [e.type for e in events] == [
        pb.TASK_EVENT_TYPE_CREATED,
        pb.TASK_EVENT_TYPE_CREATED,
        pb.TASK_EVENT_TYPE_CLAIMED,
        pb.TASK_EVENT_TYPE_ASSIGNED,
        pb.TASK_EVENT_TYPE_UPDATED,
        pb.TASK_EVENT_TYPE_RELEASED,
        pb.TASK_EVENT_TYPE_COMPLETED,
        pb.TASK_EVENT_TYPE_DELETED,
    ]
    completed = events[6]
    assert completed.task.result.struct_value["x"] == [1, 2]
    assert completed.instance_id == "w1"
    assert completed.event_id.count("-") == 1
    assert not events[7].HasField("task")
    assert events[0].task.metadata["k"] == 1
