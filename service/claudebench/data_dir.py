"""The embedded Redis's data directory: where it is by default, and a lock so one server uses it.

Two servers on one data directory would run two redis-servers appending to the same files and
split the clients between them; the second one refuses to start instead, naming the first.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path

LOCK_FILE = "claudebench.lock"


class DataDirInUse(RuntimeError):
    """Another process holds the data directory."""


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_DATA_HOME/claudebench, else ~/.local/share/claudebench: one per user, wherever the
    server is started from."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "claudebench"


class DataDirLock:
    """An exclusive lock (flock) on data_dir/claudebench.lock, released when every process that
    holds its descriptor exits or closes it: the kernel frees it after a crash, no stale lock."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        assert self._fd is not None, "not locked"
        return self._fd

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "an unknown process"
            os.close(fd)
            raise DataDirInUse(
                f"data directory {self.path.parent} is in use by {holder}: stop that server, "
                "or give this one another --data-dir"
            ) from None
        self._fd = fd
        self.describe(f"process {os.getpid()}")
        return self

    def describe(self, holder: str) -> None:
        """Record who holds the lock (what a refused server prints)."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, holder.encode() + b"\n", 0)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing our descriptor drops the lock once no child holds it either
