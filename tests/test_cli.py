"""The `claudebench` client commands (watch, health) as a person or a script runs them."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
import redis.asyncio as aioredis

from claudebench.client import Client
from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer, IncompatibleSchemaError
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


async def run_command(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claudebench", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_scripts_list_load_and_verify(
    server: ClaudebenchServer, redis_server_url: str, redis_client: aioredis.Redis
) -> None:
    code, listed, _ = await run_command("scripts", "list")
    assert code == 0
    assert f"version {server.script_version}" in listed
    assert "TASK_CLAIM" in listed

    await redis_client.script_flush()
    code, loaded, _ = await run_command("scripts", "load", "--redis-url", redis_server_url)
    assert code == 0
    claim_sha = server.executor.scripts["TASK_CLAIM"].sha
    assert "TASK_CLAIM" in loaded
    assert claim_sha in loaded
    assert (await redis_client.script_exists(claim_sha)) == [True]

    code, verified, _ = await run_command("scripts", "verify", "--server", f"127.0.0.1:{server.port}")
    assert code == 0
    assert server.script_version in verified


async def test_a_server_refuses_data_of_another_key_schema(
    settings: Settings, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await redis_client.set(keys.schema_version, "999")
    assert settings.redis_url is not None
    app = ClaudebenchServer(settings, settings.redis_url)
    with pytest.raises(IncompatibleSchemaError, match="key-schema version 999"):
        await app.start()


async def test_task_commands_for_people_and_machines(server: ClaudebenchServer) -> None:
    address = ("--server", f"127.0.0.1:{server.port}")
    code, out, _ = await run_command(
        "task", "create", "write docs", "--priority", "7", "--id", "cli-1", *address
    )
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "STATUS", "PRIORITY", "ASSIGNED", "TO", "TEXT"]
    assert out.splitlines()[1].split()[:3] == ["cli-1", "pending", "7"]

    code, out, _ = await run_command("task", "get", "cli-1", "--json", *address)
    assert json.loads(out)["task"]["text"] == "write docs"

    def register_worker() -> None:
        with Client(f"127.0.0.1:{server.port}") as client:
            client.register("cli-w", max_tasks=5)

    await asyncio.to_thread(register_worker)  # blocking client: off the server's event loop
    code, out, _ = await run_command("task", "claim", "cli-w", "--json", *address)
    assert json.loads(out)["tasks"][0]["id"] == "cli-1"
    code, out, _ = await run_command(
        "task", "complete", "cli-1", "cli-w", "--result", '{"ok": true}', "--json", *address
    )
    assert json.loads(out)["task"]["result"] == {"ok": True}
    code, out, _ = await run_command("task", "list", "--status", "completed", *address)
    assert "cli-1" in out
    code, out, _ = await run_command("state", *address)
    assert "completed 1" in out
    assert server.script_version in out
    code, out, _ = await run_command("metrics", "--json", *address)
    assert json.loads(out)["taskCounts"]["completed"] == "1"

    code, _, err = await run_command("task", "get", "nope", *address)
    assert (code, err.strip()) == (1, "error: NOT_FOUND: Task nope does not exist")
    code, _, err = await run_command("task", "create", "", *address)
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT: text must not be empty")
    code, out, _ = await run_command("task", "delete", "cli-1", *address)
    assert (code, out.strip()) == (0, "deleted cli-1")
