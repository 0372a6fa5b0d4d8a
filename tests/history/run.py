"""Runs a randomized concurrent workload against real processes, with worker deaths and a Redis
crash, then checks the recorded history (tests/history/checker.py).

`python -m tests.history.run --seconds 300 --workers 8` is the soak: it prints a report (JSON) and
exits non-zero on any violation. The test suite runs a short version (tests/history/test_history.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import redis

from claudebench.embedded_redis import EmbeddedRedis
from claudebench.keys import ALL_TASK_STATUSES, Keyspace
from claudebench.ports import free_port
from claudebench.processes import stop_processes
from tests.history.checker import check
from tests.server_process import spawn_server

ROOT = Path(__file__).resolve().parents[2]
# Short liveness so deaths are recovered within the run; a short Redis timeout so calls during the
# crash fail fast (UNAVAILABLE) rather than wait.
SERVER_ENV = {
    "CLAUDEBENCH_INSTANCE_TTL_MS": "1500",
    "CLAUDEBENCH_RECOVERY_INTERVAL_S": "0.2",
    "CLAUDEBENCH_REDIS_TIMEOUT_S": "1",
    "CLAUDEBENCH_LOG_LEVEL": "WARNING",
    "CLAUDEBENCH_EVENT_RETENTION": "10000000",
    # The lifecycle in the mix: a fast scheduler, and completed tasks removed after a second.
    "CLAUDEBENCH_SCHEDULER_INTERVAL_S": "0.1",
    "CLAUDEBENCH_COMPLETED_RETENTION_S": "1",
}


@dataclass
class Report:
    seconds: float
    workers: int
    redis_restarts: int
    calls: dict[str, int]
    outcomes: dict[str, int]
    events: dict[str, int]
    tasks: int
    violations: list[str]


def _final_state(client: redis.Redis, keys: Keyspace) -> dict[str, Any]:
    events = [fields for _, fields in cast(list[tuple[str, dict[str, str]]], client.xrange(keys.events))]
    indexes = {s: set(cast(list[str], client.zrange(keys.status_index(s), 0, -1))) for s in ALL_TASK_STATUSES}
    ids = set().union(*indexes.values()) | {e["task_id"] for e in events}
    hashes = {task_id: cast(dict[str, str], client.hgetall(keys.task(task_id))) for task_id in ids}
    holders = {h for task in hashes.values() if (h := task.get("assignedTo"))}
    held = {w: set(cast(list[str], client.zrange(keys.held(w), 0, -1))) for w in holders}
    completed = int(cast(str | None, client.hget(keys.queue_metrics, "completed")) or 0)
    return {
        "events": events,
        "hashes": hashes,
        "indexes": indexes,
        "held_sets": held,
        "completed_counter": completed,
    }


def run(
    workdir: Path, seconds: float, workers: int, restart_every: float | None = None, seed: int = 1
) -> Report:
    """`workers` worker processes for `seconds` on two replicas; Redis is SIGKILLed and restarted
    every `restart_every` seconds (default: once, half-way)."""
    keys = Keyspace()
    history_file = workdir / "history.jsonl"
    store = EmbeddedRedis(workdir / "redis", persistent=True, fsync="always").start()
    ports = [free_port(), free_port()]
    restarts = 0

    def worker_args(n: int) -> list[str]:
        return [sys.executable, "-m", "tests.history.worker", f"127.0.0.1:{ports[n % 2]}", f"w{n}"]

    servers: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            servers.append(spawn_server(store.url, port, SERVER_ENV))
        clients = [
            subprocess.Popen(
                [*worker_args(n), str(seconds), str(seed * 1000 + n), str(history_file)], cwd=ROOT
            )
            for n in range(workers)
        ]
        every = restart_every or seconds / 2
        started = time.monotonic()
        while time.monotonic() - started + every < seconds:
            time.sleep(every)
            store.kill()  # SIGKILL: no shutdown, only what appendfsync always already wrote
            time.sleep(0.5)
            store = EmbeddedRedis(workdir / "redis", persistent=True, fsync="always", port=store.port).start()
            restarts += 1
        for child in clients:
            child.wait(timeout=seconds + 60)
        # Every worker has stopped: wait until recovery has handed back every task they held.
        client = redis.Redis(port=store.port, decode_responses=True)
        deadline = time.monotonic() + 30
        while (
            client.zcard(keys.status_index("in_progress")) or client.zcard(keys.status_index("scheduled"))
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Stopped before reading: retention and the scheduler would change the state mid-read.
        stop_processes(servers, timeout_s=15)
        servers = []
        state = _final_state(client, keys)
        client.close()
    finally:
        stop_processes(servers, timeout_s=15)
        store.stop()
    history = [json.loads(line) for line in history_file.read_text().splitlines()]
    violations = check(history, **state)
    return Report(
        seconds=seconds,
        workers=workers,
        redis_restarts=restarts,
        calls=dict(Counter(c["op"] for c in history)),
        outcomes=dict(Counter(c["outcome"] for c in history)),
        events=dict(Counter(e["type"] for e in state["events"])),
        tasks=len(state["hashes"]),
        violations=violations,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.history.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=300, help="length of the workload")
    parser.add_argument("--workers", type=int, default=8, help="worker processes")
    parser.add_argument("--restart-every", type=float, default=60, help="seconds between Redis crashes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(Path(tmp), args.seconds, args.workers, args.restart_every, args.seed)
    print(json.dumps(asdict(report), indent=2))
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
