"""The README's Python snippets run as written (address aside) against a real server."""

from __future__ import annotations

import asyncio
import re
import sys

from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2 as pb
from claudebench.v1 import tasks_pb2_grpc
from tools.gen_protos import ROOT


def snippets() -> list[str]:
    return re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)


def at(server: ClaudebenchServer, snippet: str) -> str:
    return snippet.replace("127.0.0.1:50051", f"127.0.0.1:{server.port}")


async def run_python(code: str, timeout_s: float = 30) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_first_snippet_whether_or_not_tasks_are_pending(
    server: ClaudebenchServer, tasks: tasks_pb2_grpc.TaskServiceStub
) -> None:
    first = at(server, snippets()[0])
    lines = (await run_python(first)).splitlines()  # only its own task
    assert lines == ["resize images True ok"]
    for i in range(6):  # more than the worker's capacity is pending already
        await tasks.CreateTask(pb.CreateTaskRequest(text=f"pending {i}"))
    lines = (await run_python(first)).splitlines()
    assert len(lines) == 4  # Register handed it 4: at capacity, it claims nothing more
    assert all(line.endswith("True ok") for line in lines), lines
    remaining = await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_PENDING))
    assert len(remaining.tasks) == 3


async def test_worker_snippet_runs_as_written(
    server: ClaudebenchServer, tasks: tasks_pb2_grpc.TaskServiceStub
) -> None:
    worker = next(s for s in snippets() if "asyncio.run(main())" in s)
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", at(server, worker))
    try:
        created = (await tasks.CreateTask(pb.CreateTaskRequest(text="from the test"))).task
        for _ in range(300):
            task = (await tasks.GetTask(pb.GetTaskRequest(task_id=created.id))).task
            if task.status == pb.TASK_STATUS_COMPLETED:
                break
            assert process.returncode is None, "the worker snippet exited"
            await asyncio.sleep(0.05)
        assert task.status == pb.TASK_STATUS_COMPLETED
        assert task.result.struct_value["done"] == "from the test"
    finally:
        process.terminate()
        await process.wait()
