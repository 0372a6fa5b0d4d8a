"""The task-lifecycle additions to v1 that this server does not honour yet are refused, never
accepted and dropped: request fields with INVALID_ARGUMENT, RPCs with UNIMPLEMENTED."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from claudebench.v1 import tasks_pb2 as pb
from claudebench.v1 import tasks_pb2_grpc
from tests.api.helpers import rpc_error

Tasks = tasks_pb2_grpc.TaskServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT
SECOND = duration_pb2.Duration(seconds=1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"queue": "tasks"}, "queue 'tasks' is reserved"),
        ({"queue": "a b"}, "queue 'a b' must be 1 to 64 letters, digits, '.', '_' or '-'"),
    ],
)
async def test_create_refuses_fields_not_honoured_yet(
    tasks: Tasks, fields: dict[str, Any], message: str
) -> None:
    details = await rpc_error(tasks.CreateTask(pb.CreateTaskRequest(text="x", **fields)), INVALID)
    assert details.startswith(message)
    batch = pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text="x", **fields)])
    assert (await rpc_error(tasks.CreateTasks(batch), INVALID)).startswith(f"tasks[0].{message}")
    assert not (await tasks.ListTasks(pb.ListTasksRequest())).tasks  # nothing written


async def test_default_queue_is_accepted(tasks: Tasks) -> None:
    created = await tasks.CreateTask(pb.CreateTaskRequest(text="x", queue="default"))
    listed = await tasks.ListTasks(pb.ListTasksRequest(queue="default"))
    assert [t.id for t in listed.tasks] == [created.task.id]
    assert (created.task.queue, created.task.max_attempts) == ("default", 1)
    assert not (await tasks.ListTasks(pb.ListTasksRequest(queue="gpu"))).tasks


@pytest.mark.parametrize(
    ("rpc", "request_message"),
    [
        ("CreateSchedule", pb.CreateScheduleRequest(schedule_id="s", cron="* * * * *")),
        ("GetSchedule", pb.GetScheduleRequest(schedule_id="s")),
        ("DeleteSchedule", pb.DeleteScheduleRequest(schedule_id="s")),
        ("ListSchedules", pb.ListSchedulesRequest()),
        ("PauseSchedule", pb.PauseScheduleRequest(schedule_id="s")),
        ("ResumeSchedule", pb.ResumeScheduleRequest(schedule_id="s")),
    ],
)
async def test_rpcs_not_built_yet_say_so(tasks: Tasks, rpc: str, request_message: Any) -> None:
    details = await rpc_error(getattr(tasks, rpc)(request_message), grpc.StatusCode.UNIMPLEMENTED)
    assert details == f"{rpc} is not implemented by this server version yet"
