"""A Node.js client (@grpc/grpc-js + @grpc/proto-loader, installed from the lockfile) talks to a
real server through the protos and sees the same results and statuses as a Python client."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from claudebench.server import ClaudebenchServer

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
