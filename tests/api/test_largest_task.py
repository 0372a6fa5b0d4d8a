"""The largest task the input limits accept is readable through every RPC that returns it, at the
default message limit (issue 15 finding 4)."""

from __future__ import annotations

import asyncio

from google.protobuf import struct_pb2

from claudebench.api import validation as check
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb

Tasks = tasks_pb2_grpc.TaskServiceStub
LIMIT = 4 * 1024 * 1024


def largest_metadata() -> dict[str, str]:
    # 256 keys of 128 characters whose values fill the 64 KiB JSON limit.
    per_key = check.MAX_METADATA_BYTES // check.MAX_METADATA_KEYS - check.MAX_METADATA_KEY_CHARS - 2
    return {f"{i:03}".ljust(check.MAX_METADATA_KEY_CHARS, "k"): "v" * per_key for i in range(256)}


async def test_the_largest_task_reads_back_everywhere(
    tasks: Tasks, system: system_pb2_grpc.SystemServiceStub
) -> None:
    request = pb.CreateTaskRequest(text="é" * check.MAX_TEXT_CHARS, task_id="t" * check.MAX_ID_CHARS)
    request.metadata.update(largest_metadata())
    created = (await tasks.CreateTask(request)).task
    worker = "w" * check.MAX_ID_CHARS
    registered = await system.Register(system_pb2.RegisterRequest(instance_id=worker, roles=["worker"]))
    assert [t.id for t in registered.assigned_tasks] == [created.id]
    result = struct_pb2.Value(string_value="r" * (check.MAX_RESULT_BYTES - 2))
    done = await tasks.CompleteTask(
        pb.CompleteTaskRequest(task_id=created.id, worker_id=worker, result=result)
    )
    assert done.ByteSize() <= LIMIT
    update = pb.UpdateTaskRequest(task_id=created.id, text="ü" * check.MAX_TEXT_CHARS)
    assert (await tasks.UpdateTask(update)).task.result == result
    got = (await tasks.GetTask(pb.GetTaskRequest(task_id=created.id))).task
    assert got.result == result
    assert len(got.metadata) == 256
    listed = await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_COMPLETED))
    assert [t.id for t in listed.tasks] == [created.id]
    state = await system.GetState(system_pb2.GetStateRequest(recent_events=100))
    assert [e.type for e in state.recent_events][:2] == [
        pb.TASK_EVENT_TYPE_UPDATED,
        pb.TASK_EVENT_TYPE_COMPLETED,
    ]
    stream = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0"))
    types = [(await asyncio.wait_for(stream.read(), 10)).event.type for _ in range(4)]
    stream.cancel()
    assert types[0] == pb.TASK_EVENT_TYPE_CREATED
