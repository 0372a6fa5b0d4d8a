"""The peers users would pick instead, measured on this machine in the same run: BullMQ (Node) and
arq (Python). Each runs in its own environment, set up here on first use, against its own fresh
redis-server (same binary as claudebench's)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from claudebench.embedded_redis import EmbeddedRedis

HERE = Path(__file__).resolve().parent
ARQ_VENV = HERE / ".venv-arq"
ARQ_VERSION = "0.28.0"


def _run_json(command: list[str], cwd: Path | None = None) -> dict[str, Any]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr[-1000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bullmq(jobs: int) -> dict[str, Any]:
    """BullMQ add -> worker (concurrency 50) -> done, jobs/s; skipped without Node.js and npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return {"skipped": "Node.js and npm are not installed"}
    folder = HERE / "bullmq"
    if not (folder / "node_modules" / "bullmq").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=folder, check=True, timeout=300
        )
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis:
        return _run_json([node, "bench.mjs", str(redis.port), str(jobs)], cwd=folder)


def arq(jobs: int) -> dict[str, Any]:
    """arq's burst worker (max_jobs 50) draining `jobs` no-op jobs, jobs/s. arq pins redis<6, so
    it gets a virtualenv of its own."""
    python = ARQ_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ARQ_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"arq=={ARQ_VERSION}"], check=True, timeout=300
        )
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis:
        return _run_json([str(python), str(HERE / "arq_peer.py"), str(redis.port), str(jobs)])


def measure(seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, run, jobs in (("bullmq", bullmq, int(seconds * 10_000)), ("arq", arq, int(seconds * 1_500))):
        try:
            out[name] = run(jobs)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            out[name] = {"skipped": f"could not run: {exc}"}
        print(f"peer {name}: {out[name]}", file=sys.stderr)
    return out
