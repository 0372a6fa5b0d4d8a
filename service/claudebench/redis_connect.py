"""Redis clients for a standalone server and for Redis Cluster, from one URL.

``redis://`` / ``rediss://`` (and ``unix://``) name one server; ``redis+cluster://`` and
``rediss+cluster://`` name a cluster through one or more of its nodes
(``redis+cluster://user:pass@10.0.0.1:7000,10.0.0.2:7000``). The cluster client (redis-py's) finds
the other nodes itself and follows MOVED/ASK redirections and failovers.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import NoPermissionError, RedisClusterException, RedisError
from redis.typing import EncodableT

RedisClient = aioredis.Redis | RedisCluster


class HiredisPackingConnection(aioredis.Connection):
    """redis-py's asyncio connection packs commands in Python (its sync one uses hiredis when it is
    installed); this one packs them with hiredis's C packer: the same bytes, a fraction of the CPU
    (it showed as ~5-13 % of the server process under load)."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        command = args[0]
        if isinstance(command, str) and " " in command:  # "SCRIPT LOAD": two protocol arguments
            args = (*command.split(), *args[1:])
        # cast: hiredis's stub types the argument as a one-element tuple; it takes any length.
        return [hiredis.pack_command(cast(Any, args))]


_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")

# The oldest server the service runs on, and what an older one lacks. (Valkey reports the Redis
# version it is compatible with, 7.2.4 for every Valkey so far.)
MINIMUM_VERSION = (6, 2)
MINIMUM_VERSION_FEATURES = "ZRANGE ... BYSCORE LIMIT (task listing) and XTRIM MINID (event retention)"


class RedisTooOld(RuntimeError):
    """The server lacks a feature the service uses."""


def check_url(url: str) -> None:
    """ValueError naming the schemes understood, for a URL of another scheme."""
    if not url.startswith(URL_SCHEMES):
        raise ValueError(f"a Redis URL starts with {', '.join(URL_SCHEMES)}; got {redact(url)!r}")


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _versions(info: dict[str, Any]) -> list[str]:
    """redis_version of an INFO reply, or of each node's reply (a cluster client answers per node)."""
    if "redis_version" in info:
        return [str(info["redis_version"])]
    return [str(node["redis_version"]) for node in info.values() if isinstance(node, dict)]


async def require_minimum_version(client: RedisClient) -> None:
    """RedisTooOld when the server (any node of a cluster) is older than MINIMUM_VERSION. A user
    whose ACL does not allow INFO is not checked (the scripts' own errors will tell)."""
    try:
        info = await client.info("server")
    except NoPermissionError:
        return
    for version in _versions(info):
        numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        if numbers < MINIMUM_VERSION:
            minimum = ".".join(map(str, MINIMUM_VERSION))
            raise RedisTooOld(
                f"Redis {version} is older than {minimum}, the oldest this service runs on: it lacks "
                f"{MINIMUM_VERSION_FEATURES}; use Redis {minimum} or newer, or Valkey"
            )


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in _CLUSTER_SCHEMES


def as_cluster_url(url: str) -> str:
    """The redis+cluster:// form of a redis:// (or rediss://) URL naming one cluster node."""
    if is_cluster_url(url):
        return url
    scheme, rest = url.split("://", 1)
    if scheme not in ("redis", "rediss"):
        raise SystemExit(f"a Redis Cluster is reached by redis:// or rediss://, not {scheme}://")
    return f"{scheme}+cluster://{rest}"


def _cluster_client(url: str, **options: Any) -> RedisCluster:
    """redis-py's cluster client from a redis+cluster:// URL: the first node's URL (scheme,
    credentials and query kept), the other nodes as extra startup nodes."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    first, *others = hosts.split(",")
    netloc = f"{credentials}@{first}" if credentials else first
    node_url = urlunsplit((_CLUSTER_SCHEMES[parts.scheme], netloc, "", parts.query, ""))
    nodes = [ClusterNode(host, int(port)) for host, _, port in (o.rpartition(":") for o in others)]
    return RedisCluster.from_url(node_url, startup_nodes=nodes or None, decode_responses=True, **options)


def connect(url: str, *, timeout_s: float, max_connections: int) -> RedisClient:
    """The request client: a bounded pool whose callers wait for a free connection (up to the Redis
    timeout) rather than failing at once, so bursts queue instead of opening a connection each."""
    if is_cluster_url(url):
        return _cluster_client(
            url, max_connections=max_connections, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    if pool.connection_class is aioredis.Connection:  # plain TCP (TLS and unix sockets keep theirs)
        pool.connection_class = HiredisPackingConnection
    return aioredis.Redis(connection_pool=pool)


def connect_reader(url: str, *, timeout_s: float, block_s: float) -> RedisClient:
    """A client of its own for one blocking reader (XREAD BLOCK), whose socket timeout outlasts the
    block; in a cluster the reader follows the stream key's slot to whichever node serves it."""
    if is_cluster_url(url):
        return _cluster_client(
            url, max_connections=4, socket_timeout=block_s + timeout_s, socket_connect_timeout=timeout_s
        )
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        single_connection_client=True,
        socket_timeout=block_s + timeout_s,
        socket_connect_timeout=timeout_s,
    )


def server_address(client: RedisClient) -> tuple[str, int]:
    """host and port for span attributes (a cluster: the first node we were given)."""
    if isinstance(client, RedisCluster):
        node = client.startup_nodes[0] if client.startup_nodes else None
        return (node.host, int(node.port)) if node else ("", 0)
    kwargs = client.connection_pool.connection_kwargs
    return str(kwargs.get("host", kwargs.get("path", ""))), int(kwargs.get("port", 0) or 0)


async def close(client: RedisClient) -> None:
    """Close the client and every connection it opened."""
    if isinstance(client, RedisCluster):
        await client.aclose()
    else:
        await client.aclose(close_connection_pool=True)


# What a Redis call can raise when Redis, not our code, is at fault. redis-py's cluster client raises
# RedisClusterException (not a RedisError) when no node answers or a slot has no primary.
REDIS_FAULTS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
