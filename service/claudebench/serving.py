"""`claudebench serve`: the process around the server: the embedded Redis, waiting for Redis, the
port checks, the dashboard listener, `--workers` siblings and signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys

from redis.exceptions import AuthenticationError

from claudebench.api.http.app import DashboardServer
from claudebench.config import Settings
from claudebench.data_dir import DataDirInUse
from claudebench.embedded_redis import EmbeddedRedis, RedisNotFound
from claudebench.keys import namespace_prefix
from claudebench.processes import stop_processes
from claudebench.redis_connect import (
    REDIS_FAULTS,
    RedisTooOld,
    as_cluster_url,
    check_url,
    connect,
    redact,
)
from claudebench.redis_connect import close as close_redis
from claudebench.server import ClaudebenchServer, IncompatibleSchemaError
from claudebench.telemetry import build_telemetry

log = logging.getLogger(__name__)


def _start_sibling_workers(
    settings: Settings, redis_url: str, port: int, http_port: int | None
) -> list[subprocess.Popen[bytes]]:
    """settings.workers - 1 more server processes on the same port (SO_REUSEPORT between siblings;
    the dashboard's HTTP port is shared the same way)."""
    host = settings.listen.rsplit(":", 1)[0]
    command = [sys.executable, "-m", "claudebench", "serve", "--workers", "1", "--listen", f"{host}:{port}"]
    command += ["--sibling-of", str(os.getpid())]
    if http_port is None:
        command.append("--no-http")
    else:
        command += ["--http-listen", f"{settings.http_listen.rsplit(':', 1)[0]}:{http_port}"]
    if settings.namespace is not None:
        command += ["--namespace", settings.namespace]
    # The URL (it may hold a password) goes in the environment, not on a command line that every
    # user of the machine can read in the process list.
    env = {**os.environ, "CLAUDEBENCH_REDIS_URL": redis_url}
    return [subprocess.Popen(command, env=env) for _ in range(settings.workers - 1)]


# What ends a start with one line (the Redis, not our code, is at fault).
_START_REFUSALS: tuple[type[Exception], ...] = (IncompatibleSchemaError, RedisTooOld, *REDIS_FAULTS)


async def wait_for_redis(url: str, wait_s: float, timeout_s: float) -> None:
    """Until Redis answers PING, retrying with backoff (logging each try) for up to wait_s: a Redis
    that starts slower than the server (docker compose) is waited for. SystemExit (one line) when
    it never answers, or refuses the credentials (no use retrying those)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    delay, attempt = 0.25, 1
    client = connect(url, timeout_s=min(timeout_s, max(wait_s, 0.5)), max_connections=1)
    try:
        while True:
            try:
                await client.ping()
                return
            except AuthenticationError as exc:
                raise SystemExit(
                    f"claudebench: error: Redis at {redact(url)} refused the login: {exc}"
                ) from None
            except REDIS_FAULTS as exc:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise SystemExit(
                        f"claudebench: error: cannot reach Redis at {redact(url)}: {exc} "
                        f"(waited {wait_s:g} s; --redis-wait sets how long)"
                    ) from None
                log.warning(
                    "Redis at %s does not answer (try %d: %s); next try in %.2f s",
                    redact(url),
                    attempt,
                    exc,
                    delay,
                )
                await asyncio.sleep(min(delay, left))
                delay, attempt = min(delay * 2, 5.0), attempt + 1
    finally:
        await close_redis(client)


def check_port_free(listen: str) -> None:
    """SystemExit (one line) when something listens on listen's port already. A plain bind (no
    SO_REUSEPORT) fails even against a listener that set SO_REUSEPORT, so --workers cannot join
    another server's port either."""
    host, _, port = listen.rpartition(":")
    if int(port) == 0:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SystemExit(f"claudebench: error: cannot listen on {listen}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            probe.bind(address)
        except OSError as exc:
            raise SystemExit(
                f"claudebench: error: cannot listen on {listen}: {exc.strerror} (is another server running?)"
            ) from None


async def serve(settings: Settings, sibling: bool = False) -> None:
    """Run until SIGINT or SIGTERM; with no Redis URL, around an embedded redis-server."""
    if settings.workers < 1:
        raise SystemExit("--workers must be at least 1")
    try:
        namespace_prefix(settings.key_prefix, settings.namespace)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if not sibling:
        check_port_free(settings.listen)
    embedded = None
    siblings: list[subprocess.Popen[bytes]] = []
    redis_url = settings.redis_url
    if redis_url is not None and settings.redis_cluster:
        redis_url = as_cluster_url(redis_url)
    elif settings.redis_cluster:
        raise SystemExit("--redis-cluster needs --redis-url (the embedded Redis is not a cluster)")
    if redis_url is not None:
        try:
            check_url(redis_url)
        except ValueError as exc:
            raise SystemExit(f"claudebench: error: {exc}") from None
    if redis_url is None:
        try:
            embedded = EmbeddedRedis(settings.data_dir).start()
        except (DataDirInUse, RedisNotFound) as exc:
            raise SystemExit(f"claudebench: error: {exc}") from None
        redis_url = embedded.url
        log.info(
            "started embedded redis-server at %s (binary %s, data in %s)",
            redis_url,
            embedded.binary,
            settings.data_dir,
        )
    telemetry = build_telemetry(
        settings.otel_traces_exporter,
        settings.otel_metrics_exporter,
        settings.otel_exporter_otlp_protocol,
        settings.metrics_listen,
    )
    try:
        await wait_for_redis(redis_url, settings.redis_wait_s, settings.redis_timeout_s)
        app = ClaudebenchServer(settings, redis_url, telemetry, share_port=sibling or settings.workers > 1)
        try:
            port = await app.start()
        except _START_REFUSALS as exc:
            raise SystemExit(f"claudebench: error: Redis at {redact(redis_url)}: {exc}") from None
        host = settings.listen.rsplit(":", 1)[0]
        http_port = None
        if settings.http_enabled:
            dashboard = DashboardServer(app.dashboard())
            try:
                http_port = await dashboard.start(settings.http_listen, reuse_port=settings.workers > 1)
            except BaseException:
                await app.stop(grace_s=0)
                raise
            log.info("dashboard on http://%s:%d/", settings.http_listen.rsplit(":", 1)[0], http_port)
        if settings.workers > 1:
            siblings = _start_sibling_workers(settings, redis_url, port, http_port)
        log.info("claudebench serving on %s:%d (%d processes)", host, port, settings.workers)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        log.info("shutting down")
        if http_port is not None:
            await dashboard.stop()
        await app.stop()
    finally:
        stop_processes(siblings)
        telemetry.shutdown()
        if embedded is not None:
            embedded.stop()
