"""A Node.js client (@grpc/grpc-js + @grpc/proto-loader, installed from the lockfile) talks to a
real server through the protos and sees the same results and statuses as a Python client."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import grpc
import pytest

from claudebench.api.validation import MAX_NESTING
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.test_adversarial import metadata_of

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js/npm are not installed: the polyglot interop test cannot run here")
    modules = HERE / "node_modules"
    if not (modules / "@grpc" / "grpc-js").exists():
        import subprocess

        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(HERE)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return modules


@pytest.mark.timeout(120)
async def test_node_client_round_trip(node_modules: Path, server: ClaudebenchServer) -> None:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "client.mjs"),
        f"127.0.0.1:{server.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    report = json.loads(out)

    assert report["created"]["priority"] == 0
    assert report["created"]["status"] == "TASK_STATUS_PENDING"
    assert report["claimed"] == [report["created"]["id"]]
    assert report["completed"] == {"status": "TASK_STATUS_COMPLETED", "result": "ok", "lang": "js"}
    assert report["statuses"] == {
        "unknown_task": "NOT_FOUND",
        "empty_text": "INVALID_ARGUMENT",
        "unregistered_claim": "FAILED_PRECONDITION",
        "not_holder": "FAILED_PRECONDITION",
        "duplicate_id": "ALREADY_EXISTS",
    }
    assert report["events"] == [
        "TASK_EVENT_TYPE_CREATED",
        "TASK_EVENT_TYPE_CLAIMED",
        "TASK_EVENT_TYPE_COMPLETED",
    ]


@pytest.mark.timeout(120)
async def test_node_client_decodes_the_deepest_accepted_task(
    node_modules: Path, server: ClaudebenchServer
) -> None:
    """protobufjs (recursion limit 100) reads the deepest metadata the server accepts through every
    RPC that returns tasks (issue 15, finding 2)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        created = await stub.CreateTask(
            tasks_pb2.CreateTaskRequest(text="deep", metadata=metadata_of(MAX_NESTING))
        )
    process = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "deep.mjs"),
        f"127.0.0.1:{server.port}",
        created.task.id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {"get": True, "list": True, "claim": True, "state": True, "watch": True}


@pytest.mark.timeout(120)
async def test_a_node_worker_over_the_work_stream(node_modules: Path, server: ClaudebenchServer) -> None:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "worker.mjs"),
        f"127.0.0.1:{server.port}",
        "node-streamer",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    assert (await asyncio.wait_for(process.stderr.readline(), 30)).strip() == b"ready"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        ids = [
            (await stub.CreateTask(tasks_pb2.CreateTaskRequest(text=f"job {i}"))).task.id for i in range(3)
        ]
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        report = json.loads(out)
        assert report["hello"] == "accepted"
        assert sorted(report["tasks"]) == sorted(ids)
        assert sorted(a["task_id"] for a in report["acks"]) == sorted(ids)
        assert {(a["code"], a["status"]) for a in report["acks"]} == {(0, "TASK_STATUS_COMPLETED")}
        for i, task_id in enumerate(ids):
            task = (await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))).task
            assert task.result.string_value == f"JOB {i}"
