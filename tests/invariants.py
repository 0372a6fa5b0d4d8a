"""Checks of the keyspace invariants that every script must keep."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from claudebench.keys import ALL_TASK_STATUSES, FINISHED_STATUSES, Keyspace


def pending_score(priority: int, seq: int) -> float:
    return (100 - priority) * 10**13 + seq


async def members(client: aioredis.Redis, key: str) -> list[str]:
    return cast(list[str], await client.zrange(key, 0, -1))


async def scored(client: aioredis.Redis, key: str) -> dict[str, float]:
    return dict(cast(list[tuple[str, float]], await client.zrange(key, 0, -1, withscores=True)))


async def task_hash(client: aioredis.Redis, key: str) -> dict[str, str]:
    return cast(dict[str, str], await client.hgetall(key))


async def assert_consistent(client: aioredis.Redis, keys: Keyspace) -> None:
    """Every task is in exactly one status index, the pending queue holds exactly the pending
    tasks (with the right score), the due index exactly the scheduled ones (score runAt), and each
    in-progress task is in its holder's set only."""
    all_ids = await members(client, keys.all_tasks)
    indexed = {s: set(await members(client, keys.status_index(s))) for s in ALL_TASK_STATUSES}
    pending_queue = await scored(client, keys.pending)
    due = await scored(client, keys.due)
    leases = await scored(client, keys.leases)
    finished = {s: await scored(client, keys.finished(s)) for s in FINISHED_STATUSES}
    assert set().union(*indexed.values()) == set(all_ids)
    holders: dict[str, set[str]] = {}
    for task_id in all_ids:
        task = await task_hash(client, keys.task(task_id))
        assert task, f"{task_id} is indexed but has no hash"
        status = task["status"]
        assert [s for s in ALL_TASK_STATUSES if task_id in indexed[s]] == [status]
        # A finished task is in its status's finished index at its finish time, and in no other.
        for s, index in finished.items():
            if s == status:
                assert index.get(task_id) == float(task["completedAt"]), f"{task_id} not in finished:{s}"
            else:
                assert task_id not in index
        if status == "scheduled":
            assert due.get(task_id) == float(task["runAt"])
        else:
            assert task_id not in due
            assert "runAt" not in task
        if status == "pending":
            assert task["assignedTo"] == ""
            assert pending_queue.get(task_id) == pending_score(int(task["priority"]), int(task["seq"]))
        else:
            assert task_id not in pending_queue
        if status == "in_progress":
            holders.setdefault(task["assignedTo"], set()).add(task_id)
            # A held task with a timeout is in the leases index at its deadline (entries of tasks
            # that left IN_PROGRESS may stay until their deadline: TASK_EXPIRE_LEASES drops them).
            if "timeoutMs" in task:
                assert leases.get(task_id) == float(task["leaseDeadline"])
            else:
                assert "leaseDeadline" not in task
    assert set(pending_queue) == indexed["pending"]
    assert set(due) == indexed["scheduled"]
    for s, index in finished.items():
        assert set(index) == indexed[s]
    for instance_id, held in holders.items():
        assert set(await members(client, keys.held(instance_id))) == held
    held_total = 0
    async for key in client.scan_iter(match=keys.held("*")):
        held_total += await client.zcard(key)
    assert held_total == len(indexed["in_progress"]), "a held set names a task not in progress"


async def stream_events(client: aioredis.Redis, keys: Keyspace) -> list[dict[str, str]]:
    """Every entry of the task event stream, oldest first."""
    return [fields for _, fields in await entries(client, keys.events)]


async def entries(client: aioredis.Redis, stream_key: str) -> list[tuple[str, dict[str, str]]]:
    """Every (id, fields) entry of a stream, oldest first."""
    return cast(list[tuple[str, dict[str, str]]], await client.xrange(stream_key))
