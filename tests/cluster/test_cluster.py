"""Redis Cluster: a namespace's keys stay in one slot, two service replicas keep exactly-once
claims, and a primary's failover is ridden out with UNAVAILABLE, never INTERNAL.

Runs against a real 3-primary cluster (one replica each) of redis-server processes on loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.redis_connect import close as close_redis
from claudebench.redis_connect import connect
from claudebench.server import ClaudebenchServer
from claudebench.v1 import (
    hooks_pb2,
    hooks_pb2_grpc,
    queues_pb2,
    queues_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from tests.api.helpers import create, serving
from tests.concurrency.claimer import race
from tests.invariants import assert_consistent, stream_events
from tests.local_cluster import LocalCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=1) as started:
        yield started


def cluster_settings(cluster: LocalCluster, namespace: str, tmp_path: Path) -> Settings:
    # A short Redis timeout so calls during a failover fail fast instead of waiting 5 s each.
    return Settings(
        listen="127.0.0.1:0",
        redis_url=cluster.url,
        namespace=namespace,
        data_dir=tmp_path,
        redis_timeout_s=1.0,
    )


@pytest.fixture
async def replicas(cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[list[ClaudebenchServer]]:
    """Two service replicas on the same cluster and namespace (flushed first)."""
    client = connect(cluster.url, timeout_s=5, max_connections=4)
    assert isinstance(client, RedisCluster)
    await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    await close_redis(client)
    settings = cluster_settings(cluster, "orders", tmp_path)
    assert settings.redis_url is not None
    servers = [ClaudebenchServer(settings, settings.redis_url) for _ in range(2)]
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop(grace_s=0)


def all_keys(cluster: LocalCluster) -> dict[str, int]:
    """Every key on every primary -> the index of the node holding it."""
    found: dict[str, int] = {}
    for index in range(cluster.primary_count):
        with cluster.client(index) as node:
            found.update({key: index for key in node.scan_iter(count=1000)})
    return found


async def test_a_namespace_lives_in_one_slot_and_namespaces_spread(
    cluster: LocalCluster, replicas: list[ClaudebenchServer]
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{replicas[0].port}") as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        hooks = hooks_pb2_grpc.HookServiceStub(channel)
        # One call of every kind of script, so every kind of key exists.
        ids = await create(tasks, 5)
        await system.Register(system_pb2.RegisterRequest(instance_id="w:1", max_tasks=3))
        await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w:1", max_tasks=2))
        await tasks.DeleteTask(tasks_pb2.DeleteTaskRequest(task_id=ids[-1]))
        await system.CoordinateBatch(
            system_pb2.CoordinateBatchRequest(instance_id="w:1", batch_id="b:2", total_items=2)
        )
        await system.QuorumVote(
            system_pb2.QuorumVoteRequest(instance_id="w:1", decision_id="q", value="yes", total_instances=1)
        )
        await system.GetMetrics(system_pb2.GetMetricsRequest())
        # Named queues: every per-queue key (pending, backlog, fair, config, rate, all).
        queues = queues_pb2_grpc.QueueServiceStub(channel)
        await queues.ConfigureQueue(
            queues_pb2.ConfigureQueueRequest(
                queue="gpu", rate_limit=5, rate_window=duration_pb2.Duration(seconds=60)
            )
        )
        for _ in range(3):  # one claimed, one its key's next turn, one in the backlog
            await tasks.CreateTask(
                tasks_pb2.CreateTaskRequest(text="x", queue="gpu", metadata={"fairness_key": "a"})
            )
        await system.Register(system_pb2.RegisterRequest(instance_id="g:1", queues=["gpu"]))
        await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="g:1"))
        await queues.PauseQueue(queues_pb2.PauseQueueRequest(queue="gpu"))
        await hooks.PreToolUse(hooks_pb2.PreToolUseRequest(instance_id="w:1", tool="bash"))
    await replicas[0].stop(grace_s=0)  # flushes the per-script metrics hash as well
    found = all_keys(cluster)
    assert len(found) > 15
    assert {
        f"cb:{{orders}}:queue:gpu:{part}" for part in ("pending", "backlog", "fair", "config", "rate", "all")
    } <= set(found)
    # User input ("w:1", "b:2") comes after the namespace's hash tag and cannot move a key.
    assert {key_slot(k.encode()) for k in found} == {key_slot(b"orders")}
    assert all(k.startswith("cb:{orders}:") for k in found)
    assert set(found.values()) == {cluster.primary_of("cb:{orders}:x")}
    # Different namespaces hash to different slots, served by different primaries.
    owners = {cluster.primary_of(f"cb:{{{ns}}}:x") for ns in ("orders", "billing", "search", "mail")}
    assert len(owners) > 1


async def test_two_replicas_claim_every_task_exactly_once(
    cluster: LocalCluster, replicas: list[ClaudebenchServer]
) -> None:
    total = 600
    async with grpc.aio.insecure_channel(f"127.0.0.1:{replicas[1].port}") as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        await asyncio.gather(
            *(
                tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}", priority=i % 101))
                for i in range(total)
            )
        )
    # Six worker processes, half on each replica, race for the same queue.
    per_worker = await race([f"127.0.0.1:{r.port}" for r in replicas], workers=6)
    claimed = Counter(task_id for ids in per_worker for task_id in ids)
    assert len(claimed) == total
    assert max(claimed.values()) == 1, "a task was claimed twice"
    assert sum(1 for ids in per_worker if ids) > 1

    keys = Keyspace.of("cb", "orders")
    client = connect(cluster.url, timeout_s=5, max_connections=4)
    try:
        events = await stream_events(client, keys)  # type: ignore[arg-type]
        handed_over = Counter(e["task_id"] for e in events if e["type"] in ("claimed", "assigned"))
        assert handed_over == Counter(dict.fromkeys(claimed, 1))
        await assert_consistent(client, keys)  # type: ignore[arg-type]
    finally:
        await close_redis(client)


async def test_failover_of_the_namespaces_primary(tmp_path: Path) -> None:
    """Kill the primary serving the namespace: calls fail with UNAVAILABLE (never INTERNAL or
    UNKNOWN) until its replica is promoted, then the service serves again by itself."""
    with LocalCluster(tmp_path / "cluster", primaries=3, replicas=1) as cluster:
        async with serving(cluster_settings(cluster, "jobs", tmp_path)) as (_, channel):
            tasks = tasks_pb2_grpc.TaskServiceStub(channel)
            before = await create(tasks, 20)
            victim = cluster.primary_of("cb:{jobs}:x")
            with cluster.client(victim) as primary:
                primary.wait(1, 2000)  # the replica has every acknowledged create
            cluster.nodes[victim].kill()

            codes: Counter[str] = Counter()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="during"), timeout=3)
                    codes["OK"] += 1
                    if codes["OK"] >= 5:
                        break
                except grpc.aio.AioRpcError as exc:
                    codes[exc.code().name] += 1
                    await asyncio.sleep(0.1)
            assert codes["OK"] >= 5, f"the service did not recover after the failover: {codes}"
            assert set(codes) <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}, codes
            assert codes["UNAVAILABLE"] > 0, "the gap was never observed"
            # The promoted replica has every task acknowledged (and replicated) before the kill.
            for task_id in before:
                got = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id), timeout=5)
                assert got.task.id == task_id
            assert cluster.primary_of("cb:{jobs}:x") != victim


def test_a_redis_cluster_is_reached_with_a_flag_or_a_url() -> None:
    from claudebench.redis_connect import as_cluster_url, is_cluster_url

    assert as_cluster_url("redis://u:p@10.0.0.1:7000") == "redis+cluster://u:p@10.0.0.1:7000"
    assert is_cluster_url("rediss+cluster://a:1,b:2")
    assert not is_cluster_url("redis://127.0.0.1:6379/0")
    with pytest.raises(SystemExit):
        as_cluster_url("unix:///tmp/redis.sock")


def test_a_namespace_is_one_hash_tag_and_is_validated() -> None:
    assert Keyspace.of("cb", "orders").task("t-1") == "cb:{orders}:task:t-1"
    assert Keyspace.of("cb", None).task("t-1") == "cb:task:t-1"  # the seed's layout, standalone
    # An id's separators and braces are encoded: it can neither reach another key nor the slot.
    assert Keyspace.of("cb", "orders").task("t:{x}") == "cb:{orders}:task:t%3A%7Bx%7D"
    for bad in ("", "a}b", "a{b", "x" * 65, "a b"):
        with pytest.raises(ValueError, match="namespace"):
            Keyspace.of("cb", bad)
