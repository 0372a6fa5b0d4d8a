"""`python -m bench.profile`: where a claudebench server process spends its time under load.

Starts Redis and one server, drives the unary lifecycle (CreateTask -> ClaimTask -> CompleteTask)
at 16 in flight from this process, samples the server with py-spy for the duration, and writes a
summary to bench/results/profile-<date>.txt: the share of samples inside each layer (our code,
redis-py, gRPC's Python layer, asyncio/uvloop) and the top functions by inclusive share.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.__main__ import ROOT, lifecycle, lifecycle_batched
from bench.servers import claudebench_server
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.ports import free_port

# Each sample goes to the innermost frame's layer (its "self" time by layer); the first marker
# found, leaf upwards, wins. Frames of the entry point do not count as our code.
LAYERS = (
    ("redis-py", "redis/"),
    ("protobuf", "google/protobuf"),
    ("OpenTelemetry", "opentelemetry/"),
    ("grpc Python layer", "grpc/"),
    ("claudebench (service/claudebench)", "claudebench/"),
)
ENTRY_POINT = ("claudebench/__main__.py", "claudebench/cli.py")
OTHER = "event loop, gRPC core (C) and Python's own frames"


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        if any(entry in frame for entry in ENTRY_POINT):
            continue
        for layer, marker in LAYERS:
            if marker in frame:
                return layer
    return OTHER


def summarize(raw: Path, top: int = 25) -> str:
    """Inclusive shares per layer and per function, from py-spy's collapsed stacks."""
    total = 0
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = stack.split(";")
        layers[_layer(frames)] += samples
        # A frame is "function (path:line)": count each function once per stack.
        for name in {
            frame.split(" (")[0] + " (" + frame.split("(")[-1].split(":")[0] + ")" for frame in frames
        }:
            functions[name] += samples
    lines = [f"{total} samples of the server process (all threads)", "", "share per layer (innermost frame):"]
    lines += [f"  {100 * n / total:5.1f}%  {layer}" for layer, n in layers.most_common()]
    lines += ["", f"top {top} functions by inclusive share:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in functions.most_common(top)]
    return "\n".join(lines) + "\n"


async def drive(address: str, seconds: float, scenario: str) -> float:
    if scenario == "batched":
        return float((await lifecycle_batched(address, seconds, workers=4))["tasks_per_s"])
    return float((await lifecycle(address, seconds, workers=16))["tasks_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--scenario", choices=("unary", "batched"), default="unary")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        sys.exit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as redis_server:
        port = free_port()
        with claudebench_server(redis_server.url, port) as pid:
            raw = Path(tmp) / "raw.txt"
            sampler = subprocess.Popen(
                [py_spy, "record", "-p", str(pid), "-d", str(int(args.seconds)), "-r", "250",
                 "-f", "raw", "-o", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            rate = asyncio.run(drive(f"127.0.0.1:{port}", args.seconds, args.scenario))
            sampler.wait(timeout=args.seconds + 30)
        summary = f"{args.scenario} lifecycle: {rate} tasks/s while sampled\n\n" + summarize(raw)
    out = ROOT / "bench" / "results" / f"profile-{args.scenario}-{dt.date.today().isoformat()}.txt"
    out.write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
