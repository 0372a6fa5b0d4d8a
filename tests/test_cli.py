"""The `claudebench` client commands (watch, health) as a person or a script runs them."""

from __future__ import annotations

import asyncio
import json
import sys

from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "claudebench",
        "watch",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_watch_prints_events_as_json_and_as_text(
    server: ClaudebenchServer, tasks: tasks_pb2_grpc.TaskServiceStub
) -> None:
    first = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="first job", priority=5))).task
    await tasks.UpdateTask(tasks_pb2.UpdateTaskRequest(task_id=first.id, text="renamed"))
    address = f"127.0.0.1:{server.port}"

    code, out, _ = await run_cli("--server", address, "--after", "0", "--json", "--limit", "2")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["TASK_EVENT_TYPE_CREATED", "TASK_EVENT_TYPE_UPDATED"]
    assert events[1]["task"]["text"] == "renamed"

    code, out, _ = await run_cli("--server", address, "--after", "0", "--type", "updated", "--limit", "1")
    assert code == 0
    (line,) = out.splitlines()
    assert line.startswith(events[1]["eventId"])
    assert "updated" in line
    assert first.id in line
    assert "'renamed'" in line


async def test_watch_reports_bad_input(server: ClaudebenchServer) -> None:
    address = f"127.0.0.1:{server.port}"
    code, _, err = await run_cli("--server", address, "--type", "exploded")
    assert code == 2
    assert "unknown event types ['exploded']" in err
    code, _, err = await run_cli("--server", address, "--after", "not-an-id")
    assert code == 1
    assert "INVALID_ARGUMENT" in err


async def test_health_probe(server: ClaudebenchServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claudebench", "health", "--server", f"127.0.0.1:{server.port}",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert (process.returncode, out.decode().strip()) == (0, f"127.0.0.1:{server.port}: SERVING")

    nobody = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claudebench", "health", "--server", "127.0.0.1:1", "--timeout", "0.5",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(nobody.communicate(), 30)
    assert nobody.returncode == 1
    assert "no answer" in err.decode()
