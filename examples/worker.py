"""An example worker: receives tasks from a claudebench server over the Work stream and "runs" them.

    .venv/bin/python examples/worker.py [HOST:PORT] [--poll]

Create tasks from another shell (e.g. with claudebench.client.Client) and watch them complete. The
server pushes tasks as they are created (no polling); restart the server and the worker reconnects
by itself (with backoff), registering again if it was declared offline. `--poll` long-polls
ClaimTask instead of streaming. Ctrl-C finishes the running tasks and unregisters.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from typing import Any

from claudebench.client import AsyncClient, Worker
from claudebench.v1 import tasks_pb2


async def handle(task: tasks_pb2.Task) -> Any:
    await asyncio.sleep(0.1)  # the real work goes here
    return {"echo": task.text, "length": len(task.text)}


async def main(address: str, stream: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    async with AsyncClient(address) as client:
        worker = Worker(client, f"example-{socket.gethostname()}", handle, capacity=4, stream=stream)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()
        print(f"done: {worker.completed} completed, {worker.failed} failed")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--poll"]
    asyncio.run(main(arguments[0] if arguments else "127.0.0.1:50051", "--poll" not in sys.argv))
