"""Fixtures: a real redis-server (spawned, never 6379 unless told), a real grpc.aio server."""

from __future__ import annotations

import asyncio
import os
import sys

# gRPC core logs every GOAWAY a test server sends on shutdown at INFO; keep test output readable.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from claudebench.config import Settings
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.keys import Keyspace
from claudebench.redis_connect import close as close_redis
from claudebench.redis_connect import connect
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.registry import load_scripts
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2_grpc, tasks_pb2_grpc
from tests.api.helpers import close_channel
from tests.local_cluster import LocalCluster


@pytest.fixture(autouse=True)
async def dump_tasks_of_a_hung_test() -> AsyncIterator[None]:
    """If a test is still running shortly before pytest-timeout ends it, print every asyncio task's
    stack: the timeout's own dump shows only threads, which says nothing about a stuck await."""

    async def watchdog() -> None:
        await asyncio.sleep(50)
        for task in asyncio.all_tasks():
            task.print_stack(limit=12, file=sys.stderr)

    dog = asyncio.create_task(watchdog())
    yield
    dog.cancel()


# CLAUDEBENCH_TEST_BACKEND=cluster runs the suite against a 3-primary Redis Cluster (in namespace
# "test", so every key carries the hash tag {test}) instead of one redis-server.
ON_CLUSTER = os.environ.get("CLAUDEBENCH_TEST_BACKEND", "standalone") == "cluster"
NAMESPACE = "test" if ON_CLUSTER else None


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server for the whole session: CLAUDEBENCH_TEST_REDIS_URL, else one we start."""
    url = os.environ.get("CLAUDEBENCH_TEST_REDIS_URL")
    if url:
        yield url
        return
    if ON_CLUSTER:
        with LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster:
            yield cluster.url
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False) as server:
        yield server.url


@pytest.fixture
async def redis_client(redis_server_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on an empty database (flushed before each test)."""
    client = connect(redis_server_url, timeout_s=5.0, max_connections=32)
    if isinstance(client, RedisCluster):
        await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.flushdb()
    # Typed as the standalone client: the tests use only commands both clients have.
    yield cast(aioredis.Redis, client)
    await close_redis(client)


@pytest.fixture
def keys() -> Keyspace:
    return Keyspace.of("cb", NAMESPACE)


@pytest.fixture
async def executor(redis_client: aioredis.Redis) -> ScriptExecutor:
    executor = ScriptExecutor(redis_client, load_scripts())
    await executor.load_all()
    return executor


@pytest.fixture
def settings(redis_server_url: str, tmp_path: Path) -> Settings:
    return Settings(listen="127.0.0.1:0", redis_url=redis_server_url, data_dir=tmp_path, namespace=NAMESPACE)


@pytest.fixture
async def server(settings: Settings, redis_client: aioredis.Redis) -> AsyncIterator[ClaudebenchServer]:
    """A real grpc.aio server on a real socket, on the flushed database."""
    assert settings.redis_url is not None
    app = ClaudebenchServer(settings, settings.redis_url)
    await app.start()
    yield app
    await app.stop(grace_s=0)


@pytest.fixture
async def channel(server: ClaudebenchServer) -> AsyncIterator[grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    yield channel
    await close_channel(channel)


@pytest.fixture
def tasks(channel: grpc.aio.Channel) -> tasks_pb2_grpc.TaskServiceStub:
    return tasks_pb2_grpc.TaskServiceStub(channel)


@pytest.fixture
def system(channel: grpc.aio.Channel) -> system_pb2_grpc.SystemServiceStub:
    return system_pb2_grpc.SystemServiceStub(channel)
