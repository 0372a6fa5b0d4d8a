"""An example worker: claims tasks from a claudebench server and "runs" them.

    .venv/bin/python examples/worker.py [HOST:PORT]

Create tasks from another shell (e.g. with claudebench.client.Client) and watch them complete;
Ctrl-C finishes the running tasks and unregisters.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from typing import Any

from claudebench.client import AsyncClient, Worker
from claudebench.v1 import tasks_pb2


async def handle(task: tasks_pb2.Task) -> Any:
    await asyncio.sleep(0.1)  # the real work goes here
    return {"echo": task.text, "length": len(task.text)}


async def main(address: str) -> None:
    async with AsyncClient(address) as client:
        worker = Worker(client, f"example-{socket.gethostname()}", handle, capacity=4)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()
        print(f"done: {worker.completed} completed, {worker.failed} failed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"))
