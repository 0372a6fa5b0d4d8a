"""CreateTasks and CompleteTasks: many tasks in one atomic step, all or none."""

from __future__ import annotations

import grpc
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.keys import Keyspace
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import rpc_error
from tests.invariants import assert_consistent, stream_events

Tasks = tasks_pb2_grpc.TaskServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def creates(n: int, **fields: object) -> pb.CreateTasksRequest:
    return pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text=f"batch {i}", **fields) for i in range(n)])  # type: ignore[arg-type]


async def test_create_many_in_order_and_all_or_none(
    tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    created = (await tasks.CreateTasks(creates(100, priority=0))).tasks
    assert [t.text for t in created] == [f"batch {i}" for i in range(100)]
    assert all(t.priority == 0 and t.status == pb.TASK_STATUS_PENDING for t in created)

    await tasks.CreateTask(pb.CreateTaskRequest(text="taken", task_id="taken"))
    clash = pb.CreateTasksRequest(
        tasks=[
            pb.CreateTaskRequest(text="new", task_id="fresh"),
            pb.CreateTaskRequest(text="x", task_id="taken"),
        ]
    )
    assert "no task of the batch was created" in await rpc_error(
        tasks.CreateTasks(clash), grpc.StatusCode.ALREADY_EXISTS
    )
    await rpc_error(tasks.GetTask(pb.GetTaskRequest(task_id="fresh")), grpc.StatusCode.NOT_FOUND)
    assert len(await stream_events(redis_client, keys)) == 101
    await assert_consistent(redis_client, keys)


async def test_create_many_refuses_bad_batches(tasks: Tasks) -> None:
    bad_item = creates(3)
    bad_item.tasks[2].text = ""
    assert "tasks[2].text must not be empty" in await rpc_error(tasks.CreateTasks(bad_item), INVALID)
    twins = pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text="a", task_id="same")] * 2)
    assert "must differ" in await rpc_error(tasks.CreateTasks(twins), INVALID)
    await rpc_error(tasks.CreateTasks(pb.CreateTasksRequest()), INVALID)
    await rpc_error(tasks.CreateTasks(creates(1001)), INVALID)
    assert (await tasks.ListTasks(pb.ListTasksRequest())).total_size == 0


async def test_complete_many_all_or_none_and_replayable(
    tasks: Tasks, system: system_pb2_grpc.SystemServiceStub, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", max_tasks=20))
    await tasks.CreateTasks(creates(12))
    held = (await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=10))).tasks
    pending = (await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_PENDING))).tasks

    completions = [
        pb.CompleteTaskRequest(task_id=t.id, worker_id="w1", result=struct_pb2.Value(number_value=i))
        if i % 2 == 0
        else pb.CompleteTaskRequest(task_id=t.id, worker_id="w1", error=f"failed {i}")
        for i, t in enumerate(held[:6])
    ]
    refused = pb.CompleteTasksRequest(
        completions=[*completions, pb.CompleteTaskRequest(task_id=pending[0].id, worker_id="w1", error="x")]
    )
    assert "no completion of the batch was recorded" in await rpc_error(
        tasks.CompleteTasks(refused), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_IN_PROGRESS))).total_size == 10

    done = (await tasks.CompleteTasks(pb.CompleteTasksRequest(completions=completions))).tasks
    assert [t.status for t in done] == [pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_FAILED] * 3
    events = len(await stream_events(redis_client, keys))
    again = (await tasks.CompleteTasks(pb.CompleteTasksRequest(completions=completions))).tasks
    assert list(again) == list(done)  # a replay by the same worker: the stored tasks, no new events
    assert len(await stream_events(redis_client, keys)) == events

    twice = pb.CompleteTasksRequest(completions=[completions[0], completions[0]])
    assert "only once" in await rpc_error(tasks.CompleteTasks(twice), INVALID)
    await assert_consistent(redis_client, keys)
