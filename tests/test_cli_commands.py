"""The `claudebench instance ...`, `task claim|release|assign`, `task list` paging, `task get` and
`state --events` commands, run as a person runs them against a real server."""

from __future__ import annotations

import json

from claudebench.client.async_client import to_struct, to_value
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.test_cli import run_command


def _at(server: ClaudebenchServer) -> tuple[str, str]:
    return ("--server", f"127.0.0.1:{server.port}")


async def test_instance_register_heartbeat_list_unregister(server: ClaudebenchServer) -> None:
    at = _at(server)
    code, out, err = await run_command(
        "instance", "register", "cli-i1", "--max-tasks", "3", "--role", "docs", "--role", "review", *at
    )
    assert (code, err) == (0, "")
    assert out.startswith("registered cli-i1")

    code, out, _ = await run_command("instance", "list", *at)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["INSTANCE", "STATUS", "HELD", "MAX", "ROLES"]
    assert row.split() == ["cli-i1", "active", "0", "3", "docs,review"]

    code, out, _ = await run_command("instance", "heartbeat", "cli-i1", *at)
    assert (code, out.split()[:2]) == (0, ["cli-i1:", "alive"])

    code, out, _ = await run_command("instance", "list", "--json", *at)
    (listed,) = json.loads(out)["instances"]
    assert (listed["instanceId"], listed["maxTasks"], listed["roles"]) == ("cli-i1", 3, ["docs", "review"])

    code, out, _ = await run_command("instance", "unregister", "cli-i1", *at)
    assert (code, out.strip()) == (0, "unregistered cli-i1; tasks released: 0")
    code, out, _ = await run_command("instance", "list", *at)
    assert out.splitlines()[1:] == []

    code, out, err = await run_command("instance", "register", "", *at)
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT: ")
    assert len(err.splitlines()) == 1


async def test_task_claim_release_assign_and_get_details(
    server: ClaudebenchServer,
    tasks: tasks_pb2_grpc.TaskServiceStub,
    system: system_pb2_grpc.SystemServiceStub,
) -> None:
    at = _at(server)
    metadata = {"team": "docs"}
    created = await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="write docs", task_id="cli-t1"))
    assert created.task.id == "cli-t1"
    await tasks.UpdateTask(
        tasks_pb2.UpdateTaskRequest(task_id="cli-t1", metadata=to_struct(metadata)),
    )
    for worker in ("cli-w1", "cli-w2"):
        await system.Register(system_pb2.RegisterRequest(instance_id=worker, max_tasks=2))

    code, out, err = await run_command("task", "claim", "--worker", "cli-w1", "--json", *at)
    assert (code, err) == (0, "")
    assert [t["id"] for t in json.loads(out)["tasks"]] == ["cli-t1"]

    code, out, err = await run_command(
        "task", "release", "cli-t1", "--worker", "cli-w1", "--reason", "going home", *at
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[1].split()[:2] == ["cli-t1", "pending"]

    code, out, err = await run_command("task", "assign", "cli-t1", "--instance", "cli-w2", *at)
    assert (code, err) == (0, "")
    assert out.splitlines()[1].split()[:4] == ["cli-t1", "in_progress", "50", "cli-w2"]

    await tasks.CompleteTask(
        tasks_pb2.CompleteTaskRequest(task_id="cli-t1", worker_id="cli-w2", error="disk full")
    )
    code, out, _ = await run_command("task", "get", "cli-t1", *at)
    assert code == 0
    details = out.splitlines()[2:]
    assert "error: disk full" in details
    assert 'metadata: {"team": "docs"}' in details
    assert any(line.startswith("attempts: ") for line in details)

    done = await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="sum", task_id="cli-t2"))
    await tasks.AssignTask(tasks_pb2.AssignTaskRequest(task_id=done.task.id, instance_id="cli-w1"))
    await tasks.CompleteTask(
        tasks_pb2.CompleteTaskRequest(task_id="cli-t2", worker_id="cli-w1", result=to_value({"sum": 3}))
    )
    code, out, _ = await run_command("task", "get", "cli-t2", *at)
    assert out.splitlines()[2:3] == ['result: {"sum": 3}']

    code, _, err = await run_command("task", "claim", *at)
    assert (code, err.strip()) == (2, "error: task claim needs --worker W (the instance that claims)")
    code, _, err = await run_command("task", "release", "cli-t2", "--worker", "cli-w1", *at)
    assert code == 1
    assert err.startswith("error: FAILED_PRECONDITION: ")
    assert len(err.splitlines()) == 1
    code, _, err = await run_command("task", "assign", "nope", "--instance", "cli-w1", *at)
    assert (code, err.strip()) == (1, "error: NOT_FOUND: Task nope does not exist")

    code, out, err = await run_command("task", "retry", "cli-t1", "--reset-attempts", *at)
    assert (code, err) == (0, "")
    assert out.splitlines()[1].split()[:2] == ["cli-t1", "pending"]
    code, out, err = await run_command("task", "cancel", "cli-t1", "--reason", "not needed", "--json", *at)
    assert (code, err) == (0, "")
    assert json.loads(out)["task"]["status"] == "TASK_STATUS_CANCELLED"
    code, _, err = await run_command("task", "cancel", "cli-t1", *at)
    assert code == 1
    assert err.strip().endswith(
        "is cancelled; only a PENDING, SCHEDULED or IN_PROGRESS task can be cancelled"
    )
    code, _, err = await run_command("task", "retry", "cli-t2", *at)
    assert code == 1
    assert "is completed; only a FAILED or CANCELLED task can be retried" in err


async def test_task_list_pages(server: ClaudebenchServer, tasks: tasks_pb2_grpc.TaskServiceStub) -> None:
    at = _at(server)
    for n in range(5):
        await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"job {n}", task_id=f"page-{n}"))

    def ids(out: str) -> list[str]:
        return [line.split()[0] for line in out.splitlines()[1:]]

    seen: list[str] = []
    token: list[str] = []
    for _ in range(3):
        code, out, err = await run_command("task", "list", "--limit", "2", *token, *at)
        assert code == 0
        seen += ids(out)
        if not err:
            break
        (hint,) = err.splitlines()
        assert hint.startswith("more: --page-token ")
        token = hint.removeprefix("more: ").split()
    assert sorted(seen) == [f"page-{n}" for n in range(5)]
    assert err == ""

    code, out, err = await run_command("task", "list", "--limit", "2", "--all", *at)
    assert (code, err) == (0, "")
    assert sorted(ids(out)) == sorted(seen)
    code, out, err = await run_command("task", "list", "--limit", "2", "--all", "--json", *at)
    assert sorted(t["id"] for t in json.loads(out)["tasks"]) == sorted(seen)

    code, _, err = await run_command("task", "list", "--page-token", "not-a-token", *at)
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT: ")
    assert len(err.splitlines()) == 1


async def test_state_prints_recent_events(
    server: ClaudebenchServer, tasks: tasks_pb2_grpc.TaskServiceStub
) -> None:
    await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="first", task_id="ev-1"))
    await tasks.UpdateTask(tasks_pb2.UpdateTaskRequest(task_id="ev-1", text="renamed"))
    code, out, _ = await run_command("state", "--events", "2", *_at(server))
    assert code == 0
    events = [line for line in out.splitlines() if "ev-1" in line]
    assert len(events) == 2
    assert {e.split()[1] for e in events} == {"created", "updated"}
    code, out, _ = await run_command("state", *_at(server))
    assert "ev-1" not in out


async def test_queue_list_get_configure_pause_resume(
    server: ClaudebenchServer, tasks: tasks_pb2_grpc.TaskServiceStub
) -> None:
    at = _at(server)
    await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="render", queue="gpu"))
    code, out, err = await run_command(
        "queue",
        "configure",
        "gpu",
        "--concurrency-limit",
        "2",
        "--rate-limit",
        "10",
        "--rate-window",
        "1.5",
        *at,
    )
    assert (code, err) == (0, "")
    code, out, _ = await run_command("queue", "pause", "gpu", *at)
    assert out.splitlines()[1].split()[:3] == ["gpu", "yes", "1"]
    code, out, _ = await run_command("queue", "list", *at)
    header, default, gpu = out.splitlines()
    assert header.split()[:3] == ["QUEUE", "PAUSED", "PENDING"]
    assert default.split()[:2] == ["default", "no"]
    assert gpu.split()[-4:] == ["concurrency", "2,", "rate", "10/1.5s"]
    code, out, _ = await run_command("queue", "resume", "gpu", "--json", *at)
    assert json.loads(out)["queue"]["concurrencyLimit"] == 2
    assert "paused" not in json.loads(out)["queue"]
    code, out, err = await run_command("queue", "get", "nope", *at)
    assert (code, err.strip()) == (1, "error: NOT_FOUND: Queue nope does not exist")
