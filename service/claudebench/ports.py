"""Free loopback ports for the processes the tests, the benchmark and `claudebench serve` start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_handed_out: set[int] = set()
_LOWEST_PORT = 10_000


def _ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux; the usual default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _bind(port: int) -> int | None:
    """The port bound on loopback (the kernel's choice for 0), or None when it is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return None
        bound: int = probe.getsockname()[1]
        return bound


def free_port() -> int:
    """A loopback port nothing listens on now, never the same one twice in this process.

    Chosen below the ephemeral range where it can: a port from that range may be taken as an
    outgoing connection's local port between this check and whoever binds it (a test's client
    connections did exactly that to a Redis Cluster node once). It is still only a hint; anyone
    else may bind it first, so EmbeddedRedis chooses again when that happens.
    """
    below = range(_LOWEST_PORT, _ephemeral_ports().start)
    tries = [random.choice(below) for _ in range(100)] if below else []
    for wanted in [*tries, *[0] * 100]:  # then let the kernel pick
        port = _bind(wanted)
        if port is not None and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise OSError("no free loopback port found")
