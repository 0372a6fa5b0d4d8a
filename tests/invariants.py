"""Checks of the keyspace invariants that every script must keep."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from claudebench.keys import ALL_TASK_STATUSES, DEFAULT_QUEUE, FINISHED_STATUSES, Keyspace


def pending_score(priority: int, seq: int) -> float:
    return (100 - priority) * 10**13 + seq


async def members(client: aioredis.Redis, key: str) -> list[str]:
    return cast(list[str], await client.zrange(key, 0, -1))


async def scored(client: aioredis.Redis, key: str) -> dict[str, float]:
    return dict(cast(list[tuple[str, float]], await client.zrange(key, 0, -1, withscores=True)))


async def task_hash(client: aioredis.Redis, key: str) -> dict[str, str]:
    return cast(dict[str, str], await client.hgetall(key))


async def assert_consistent(client: aioredis.Redis, keys: Keyspace) -> None:
    """Every task is in exactly one status index; each queue's pending ZSET and fairness backlog
    hold exactly its pending tasks (with the right score), its index all its tasks, its counters
    its tasks per status; the due index holds exactly the scheduled tasks (score runAt); each
    in-progress task is in its holder's set only."""
    all_ids = await members(client, keys.all_tasks)
    indexed = {s: set(await members(client, keys.status_index(s))) for s in ALL_TASK_STATUSES}
    due = await scored(client, keys.due)
    leases = await scored(client, keys.leases)
    finished = {s: await scored(client, keys.finished(s)) for s in FINISHED_STATUSES}
    assert set().union(*indexed.values()) == set(all_ids)
    names = {DEFAULT_QUEUE, *await members(client, keys.queues)}
    pending_queues = {q: await scored(client, keys.queue(q, "pending")) for q in names}
    backlogs = {q: await members(client, keys.queue(q, "backlog")) for q in names}
    holders: dict[str, set[str]] = {}
    per_queue: dict[str, dict[str, set[str]]] = {q: {} for q in names}
    turns: dict[str, dict[str, int]] = {q: {} for q in names}
    for task_id in all_ids:
        task = await task_hash(client, keys.task(task_id))
        assert task, f"{task_id} is indexed but has no hash"
        status, queue = task["status"], task.get("queue", DEFAULT_QUEUE)
        assert queue in names, f"{task_id}: queue {queue} is not in the registry"
        per_queue[queue].setdefault(status, set()).add(task_id)
        assert [s for s in ALL_TASK_STATUSES if task_id in indexed[s]] == [status]
        pending_queue = pending_queues[queue]
        in_backlog = [m for m in backlogs[queue] if m.endswith(":" + task_id)]
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
            expected = pending_score(int(task["priority"]), int(task["seq"]))
            if "fairKey" in task:
                # Its key's turn (at its place, or re-entered later: a fresh seq) or the backlog.
                assert (task_id in pending_queue) != bool(in_backlog), task_id
                if task_id in pending_queue:
                    score = pending_queue[task_id]
                    assert score // 10**13 == expected // 10**13
                    assert score >= expected
                    turns[queue][task["fairKey"]] = turns[queue].get(task["fairKey"], 0) + 1
            else:
                assert pending_queue.get(task_id) == expected
                assert not in_backlog
        else:
            assert task_id not in pending_queue
            assert not in_backlog
        if status == "in_progress":
            holders.setdefault(task["assignedTo"], set()).add(task_id)
            # A held task with a timeout is in the leases index at its deadline (entries of tasks
            # that left IN_PROGRESS may stay until their deadline: TASK_EXPIRE_LEASES drops them).
            if "timeoutMs" in task:
                assert leases.get(task_id) == float(task["leaseDeadline"])
            else:
                assert "leaseDeadline" not in task
    assert set(due) == indexed["scheduled"]
    counts = await client.hgetall(keys.queue_counts)
    for queue in names:
        pending = set(pending_queues[queue]) | {m.rsplit(":", 1)[1] for m in backlogs[queue]}
        assert pending == per_queue[queue].get("pending", set()), queue
        assert set(await members(client, keys.queue(queue, "all"))) == set().union(*per_queue[queue].values())
        for status in ("in_progress", "completed", "failed", "scheduled", "cancelled"):
            if queue == DEFAULT_QUEUE:  # no counter: the status index minus the named queues' total
                assert f"{queue}|{status}" not in counts
                counted = len(indexed[status]) - int(counts.get(f"*|{status}", 0))
            else:
                counted = int(counts.get(f"{queue}|{status}", 0))
            assert counted == len(per_queue[queue].get(status, ())), (queue, status)
        fair = {k: int(v) for k, v in (await client.hgetall(keys.queue(queue, "fair"))).items()}
        assert fair == turns[queue], queue
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
