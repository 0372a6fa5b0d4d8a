"""TaskService through real stubs on a real socket: success paths and every error status."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from claudebench.v1 import system_pb2 as sys_pb
from claudebench.v1 import system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import rpc_error

Tasks = tasks_pb2_grpc.TaskServiceStub
System = system_pb2_grpc.SystemServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


async def register(system: System, instance_id: str = "w1", max_tasks: int = 10) -> None:
    await system.Register(
        # Not the "worker" role: that would auto-assign pending tasks at registration.
        sys_pb.RegisterRequest(instance_id=instance_id, roles=["claimer"], max_tasks=max_tasks)
    )


async def create(tasks: Tasks, text: str = "work", **fields: object) -> pb.Task:
    response: pb.CreateTaskResponse = await tasks.CreateTask(
        pb.CreateTaskRequest(text=text, **fields)  # type: ignore[arg-type]
    )
    return response.task


async def test_create_and_get(tasks: Tasks) -> None:
    metadata = struct_pb2.Struct()
    metadata.update({"repo": "x", "tags": ["a", "b"], "nested": {"n": 1.5, "none": None}})

    created = await create(tasks, "  write docs  ", metadata=metadata)
    fetched = (await tasks.GetTask(pb.GetTaskRequest(task_id=created.id))).task

    assert fetched == created
    assert created.text == "  write docs  "
    assert created.priority == 50
    assert created.status == pb.TASK_STATUS_PENDING
    assert created.metadata == metadata
    assert created.attempts == 0
    assert created.create_time.ToMilliseconds() > 0
    assert not created.HasField("assign_time")
    assert not created.HasField("result")


async def test_create_honours_priority_zero_and_chosen_id(tasks: Tasks) -> None:
    created = await create(tasks, priority=0, task_id="job-42")
    assert (created.id, created.priority) == ("job-42", 0)
    details = await rpc_error(create(tasks, task_id="job-42"), grpc.StatusCode.ALREADY_EXISTS)
    assert details == "Task job-42 already exists"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": ""}, "text must not be empty"),
        ({"text": "   "}, "text must not be empty"),
        ({"text": "x" * 501}, "text is 501 characters long; the limit is 500"),
        ({"text": "ok", "priority": 101}, "priority must be between 0 and 100, got 101"),
        ({"text": "ok", "priority": -1}, "priority must be between 0 and 100, got -1"),
        ({"text": "ok", "task_id": "a b"}, "may contain only letters"),
        ({"text": "ok", "task_id": "{slot}"}, "may contain only letters"),
        ({"text": "ok", "task_id": ""}, "task_id is required"),
        ({"text": "ok", "task_id": "x" * 129}, "the limit is 128"),
    ],
)
async def test_create_rejects_bad_input(tasks: Tasks, fields: dict[str, object], message: str) -> None:
    details = await rpc_error(tasks.CreateTask(pb.CreateTaskRequest(**fields)), INVALID)  # type: ignore[arg-type]
    assert message in details
    assert (await tasks.ListTasks(pb.ListTasksRequest())).total_size == 0


async def test_create_rejects_oversized_metadata(tasks: Tasks) -> None:
    big = struct_pb2.Struct()
    big.update({"blob": "x" * 70_000})
    assert "bytes as JSON" in await rpc_error(create(tasks, metadata=big), INVALID)
    many = struct_pb2.Struct()
    many.update({f"k{i}": i for i in range(257)})
    assert "257 keys" in await rpc_error(create(tasks, metadata=many), INVALID)


async def test_get_unknown_and_invalid(tasks: Tasks) -> None:
    assert await rpc_error(tasks.GetTask(pb.GetTaskRequest(task_id="t-none")), grpc.StatusCode.NOT_FOUND) == (
        "Task t-none does not exist"
    )
    await rpc_error(tasks.GetTask(pb.GetTaskRequest()), INVALID)


async def test_list_pages_through_everything_in_creation_order(tasks: Tasks) -> None:
    ids = [(await create(tasks, f"task {i}", priority=i % 3 * 40)).id for i in range(25)]
    seen: list[str] = []
    token = ""
    while True:
        page = await tasks.ListTasks(pb.ListTasksRequest(page_size=10, page_token=token))
        assert page.total_size == 25
        seen.extend(t.id for t in page.tasks)
        token = page.next_page_token
        if not token:
            break
    assert seen == ids


async def test_list_filters(tasks: Tasks, system: System) -> None:
    await register(system)
    for i in range(5):
        await create(tasks, f"task {i}")
    claimed = (await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=2))).tasks

    pending = await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_PENDING))
    held = await tasks.ListTasks(pb.ListTasksRequest(assigned_to="w1"))
    held_too = await tasks.ListTasks(pb.ListTasksRequest(assigned_to="w1", status=pb.TASK_STATUS_IN_PROGRESS))
    default_size = await tasks.ListTasks(pb.ListTasksRequest(page_size=0))

    assert pending.total_size == 3
    assert all(t.status == pb.TASK_STATUS_PENDING for t in pending.tasks)
    assert [t.id for t in held.tasks] == [t.id for t in claimed]
    assert held_too == held
    assert len(default_size.tasks) == 5


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.ListTasksRequest(page_size=1001), "page_size must be between 1 and 1000"),
        (pb.ListTasksRequest(page_size=-1), "page_size must be between 1 and 1000"),
        (pb.ListTasksRequest(page_token="not-a-token"), "page_token is malformed"),
        (pb.ListTasksRequest(page_token="eyJhZnRlciI6LTF9"), "page_token is malformed"),
        (pb.ListTasksRequest(status=pb.TASK_STATUS_UNSPECIFIED), "status must be one of"),
        (
            pb.ListTasksRequest(assigned_to="w1", status=pb.TASK_STATUS_COMPLETED),
            "assigned_to lists the tasks an instance holds",
        ),
    ],
)
async def test_list_rejects_bad_input(tasks: Tasks, request_: pb.ListTasksRequest, message: str) -> None:
    assert message in await rpc_error(tasks.ListTasks(request_), INVALID)


async def test_page_token_is_bound_to_its_filter(tasks: Tasks) -> None:
    for i in range(3):
        await create(tasks, f"task {i}")
    page = await tasks.ListTasks(pb.ListTasksRequest(page_size=1))
    other = pb.ListTasksRequest(status=pb.TASK_STATUS_PENDING, page_token=page.next_page_token)
    assert "different filters" in await rpc_error(tasks.ListTasks(other), INVALID)


async def test_claim_statuses(tasks: Tasks, system: System) -> None:
    await create(tasks)
    unregistered = await rpc_error(tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1")), PRECONDITION)
    assert "not registered" in unregistered
    await register(system, max_tasks=1)
    assert "max_tasks must be between 1 and 100" in await rpc_error(
        tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=101)), INVALID
    )

    claimed = await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1"))
    assert len(claimed.tasks) == 1
    assert claimed.tasks[0].status == pb.TASK_STATUS_IN_PROGRESS
    assert claimed.tasks[0].assigned_to == "w1"
    assert claimed.tasks[0].HasField("assign_time")
    await rpc_error(tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1")), grpc.StatusCode.RESOURCE_EXHAUSTED)


async def test_claim_on_empty_queue_returns_nothing(tasks: Tasks, system: System) -> None:
    await register(system)
    assert list((await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1"))).tasks) == []


async def test_assign_statuses(tasks: Tasks, system: System) -> None:
    await register(system, "w1", max_tasks=1)
    await register(system, "w2")
    first, second = await create(tasks), await create(tasks)

    assigned = (await tasks.AssignTask(pb.AssignTaskRequest(task_id=first.id, instance_id="w1"))).task
    assert (assigned.status, assigned.assigned_to) == (pb.TASK_STATUS_IN_PROGRESS, "w1")

    await rpc_error(
        tasks.AssignTask(pb.AssignTaskRequest(task_id="t-none", instance_id="w1")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert "Task not pending" in await rpc_error(
        tasks.AssignTask(pb.AssignTaskRequest(task_id=first.id, instance_id="w2")), PRECONDITION
    )
    assert "Instance at capacity" in await rpc_error(
        tasks.AssignTask(pb.AssignTaskRequest(task_id=second.id, instance_id="w1")),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "not registered" in await rpc_error(
        tasks.AssignTask(pb.AssignTaskRequest(task_id=second.id, instance_id="w9")), PRECONDITION
    )


async def test_update(tasks: Tasks, system: System) -> None:
    task = await create(tasks, priority=10)
    metadata = struct_pb2.Struct()
    metadata.update({"stage": "review"})

    updated = (
        await tasks.UpdateTask(
            pb.UpdateTaskRequest(task_id=task.id, text="new", priority=0, metadata=metadata)
        )
    ).task

    assert (updated.text, updated.priority, updated.metadata["stage"]) == ("new", 0, "review")
    assert "nothing to update" in await rpc_error(
        tasks.UpdateTask(pb.UpdateTaskRequest(task_id=task.id)), INVALID
    )
    await rpc_error(
        tasks.UpdateTask(pb.UpdateTaskRequest(task_id="t-none", text="x")),
        grpc.StatusCode.NOT_FOUND,
    )
    await register(system)
    await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1"))
    await tasks.CompleteTask(
        pb.CompleteTaskRequest(task_id=task.id, worker_id="w1", result=struct_pb2.Value(number_value=1))
    )
    assert "cannot change status" in await rpc_error(
        tasks.UpdateTask(pb.UpdateTaskRequest(task_id=task.id, status=pb.TASK_STATUS_PENDING)),
        PRECONDITION,
    )


async def test_complete_release_delete(tasks: Tasks, system: System) -> None:
    await register(system)
    a, b = await create(tasks), await create(tasks)
    await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=2))

    null_result = pb.CompleteTaskRequest(
        task_id=a.id, worker_id="w1", result=struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    )
    done = (await tasks.CompleteTask(null_result)).task
    assert done.status == pb.TASK_STATUS_COMPLETED
    assert done.result.WhichOneof("kind") == "null_value"
    assert (await tasks.CompleteTask(null_result)).task == done  # idempotent retry

    assert "set either result" in await rpc_error(
        tasks.CompleteTask(pb.CompleteTaskRequest(task_id=b.id, worker_id="w1")), INVALID
    )
    assert "error must describe" in await rpc_error(
        tasks.CompleteTask(pb.CompleteTaskRequest(task_id=b.id, worker_id="w1", error="")), INVALID
    )
    assert "not held by w2" in await rpc_error(
        tasks.CompleteTask(pb.CompleteTaskRequest(task_id=b.id, worker_id="w2", error="x")),
        PRECONDITION,
    )
    released = (
        await tasks.ReleaseTask(pb.ReleaseTaskRequest(task_id=b.id, worker_id="w1", reason="later"))
    ).task
    assert (released.status, released.assigned_to) == (pb.TASK_STATUS_PENDING, "")
    await rpc_error(tasks.ReleaseTask(pb.ReleaseTaskRequest(task_id=b.id, worker_id="w1")), PRECONDITION)
    await rpc_error(
        tasks.ReleaseTask(pb.ReleaseTaskRequest(task_id=b.id, worker_id="w1", reason="x" * 501)),
        INVALID,
    )

    await tasks.DeleteTask(pb.DeleteTaskRequest(task_id=b.id))
    await rpc_error(tasks.GetTask(pb.GetTaskRequest(task_id=b.id)), grpc.StatusCode.NOT_FOUND)
    await rpc_error(tasks.DeleteTask(pb.DeleteTaskRequest(task_id=b.id)), grpc.StatusCode.NOT_FOUND)


async def test_failed_outcome(tasks: Tasks, system: System) -> None:
    await register(system)
    task = await create(tasks)
    await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1"))
    failed = (
        await tasks.CompleteTask(pb.CompleteTaskRequest(task_id=task.id, worker_id="w1", error="boom"))
    ).task
    assert (failed.status, failed.error) == (pb.TASK_STATUS_FAILED, "boom")
    assert failed.HasField("complete_time")
