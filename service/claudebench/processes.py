"""Stopping child processes: politely first (SIGTERM, so servers flush and close), then for sure."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any


def stop_processes(processes: Iterable[subprocess.Popen[Any]], timeout_s: float = 10.0) -> None:
    """SIGTERM every process still running, wait up to timeout_s for each, SIGKILL the rest."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
