"""The private redis-server processes the tests, the benchmark and `claudebench serve` start."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from claudebench.data_dir import DataDirInUse
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.ports import free_port
from tests.local_cluster import LocalCluster


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", free_port()))
        squatter.listen()
        yield squatter.getsockname()[1]


def answers(port: int) -> bool:
    with redis.Redis(port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)) as client:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


def test_free_port_never_hands_out_a_port_twice_nor_one_outgoing_connections_may_take() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    low, _high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    assert all(port < int(low) for port in ports)


@pytest.mark.parametrize("which", ["port", "cluster_port"])
def test_a_port_taken_before_start_is_chosen_again(tmp_path: Path, which: str) -> None:
    server = EmbeddedRedis(tmp_path, persistent=False, cluster_bus=True)
    taken = getattr(server, which)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        # Taken between choosing and binding, as an outgoing connection's local port can be.
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with server:
            assert getattr(server, which) != taken
            assert answers(server.port)


def test_a_port_given_and_taken_is_an_error_saying_so_not_another_port(
    tmp_path: Path, occupied_port: int
) -> None:
    # A port the caller chose is never swapped for another: its clients may have been told it.
    server = EmbeddedRedis(tmp_path, persistent=False, port=occupied_port)
    with pytest.raises(RuntimeError, match="Address already in use"):
        server.start()
    assert server.port == occupied_port


def test_a_cluster_that_cannot_start_stops_the_nodes_it_started(tmp_path: Path, occupied_port: int) -> None:
    cluster = LocalCluster(tmp_path, primaries=3)
    taken = EmbeddedRedis(tmp_path / "taken", persistent=False, port=occupied_port, cluster_bus=True)
    cluster.nodes[2] = taken
    with pytest.raises(RuntimeError, match="Address already in use"):
        cluster.start()
    assert not any(answers(node.port) for node in cluster.nodes[:2])


def test_a_second_redis_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    """Issue 15 finding 9: two servers on one data directory would split the data silently."""
    with EmbeddedRedis(tmp_path, persistent=False) as first:
        second = EmbeddedRedis(tmp_path, persistent=False)
        with pytest.raises(DataDirInUse, match=rf"in use by process {os.getpid()} and its redis-server"):
            second.start()
        assert first.url  # the first one still serves
    with EmbeddedRedis(tmp_path, persistent=False):  # free again once the first stopped
        pass
