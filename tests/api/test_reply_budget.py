"""Issue 15 finding 4: no reply can pass the message limit, whatever was accepted, and nothing is
committed whose reply could not be sent. Tasks near the input limits are read back through every
RPC that returns tasks (or events) on a server whose message limit is 512 KiB."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import rpc_error

LIMIT = 512 * 1024
BLOB = 65_000  # characters: metadata of ~64 KiB as JSON, the input limit
LIB = Path(__file__).parents[2] / "service/claudebench/lua/lib/task.lua"

Tasks = tasks_pb2_grpc.TaskServiceStub
System = system_pb2_grpc.SystemServiceStub


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, max_message_bytes=LIMIT)


def big_task(i: int) -> pb.CreateTaskRequest:
    request = pb.CreateTaskRequest(text=f"big {i}", task_id=f"big-{i:03}")
    request.metadata.update({"blob": "x" * BLOB})
    return request


async def create_big(tasks: Tasks, count: int) -> list[str]:
    created = []
    for i in range(count):
        created.append((await tasks.CreateTask(big_task(i))).task.id)
    return created


async def register(system: System, worker: str, capacity: int = 100) -> system_pb2.RegisterResponse:
    reply: system_pb2.RegisterResponse = await system.Register(
        system_pb2.RegisterRequest(instance_id=worker, roles=["worker"], max_tasks=capacity)
    )
    return reply


async def test_a_claim_stops_before_the_task_that_would_not_fit(tasks: Tasks, system: System) -> None:
    created = await create_big(tasks, 20)  # ~1.3 MB of tasks against a 512 KiB message
    claimed = [t.id for t in (await register(system, "w1")).assigned_tasks]
    while len(claimed) < len(created):
        reply = await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=100))
        assert 1 <= len(reply.tasks) < 20
        assert reply.ByteSize() <= LIMIT
        claimed += [t.id for t in reply.tasks]
        # Every task handed over is in a reply: the worker holds exactly what it was told.
        held = await tasks.ListTasks(pb.ListTasksRequest(assigned_to="w1", page_size=1000))
        assert held.total_size == len(claimed)
    assert claimed == created


async def test_a_claim_over_named_queues_stops_before_the_task_that_would_not_fit(
    tasks: Tasks, system: System
) -> None:
    """The multi-queue claim (queues merged) bounds each task before its hand-over too, leases
    included (a timeout adds leaseDeadline at the hand-over)."""
    created = []
    for i in range(16):
        request = big_task(i)
        request.queue = "gpu" if i % 2 else "cpu"
        request.timeout.FromSeconds(600)
        created.append((await tasks.CreateTask(request)).task.id)
    await system.Register(
        system_pb2.RegisterRequest(instance_id="w1", roles=["claimer"], max_tasks=100, queues=["cpu", "gpu"])
    )
    claimed: list[str] = []
    while len(claimed) < len(created):
        reply = await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=100))
        assert 1 <= len(reply.tasks) < 16
        assert reply.ByteSize() <= LIMIT
        assert all(t.HasField("lease_deadline") for t in reply.tasks)
        claimed += [t.id for t in reply.tasks]
        held = await tasks.ListTasks(pb.ListTasksRequest(assigned_to="w1", page_size=1000))
        assert held.total_size == len(claimed)
    assert sorted(claimed) == sorted(created)


async def test_register_hands_over_only_what_its_reply_carries(tasks: Tasks, system: System) -> None:
    await create_big(tasks, 12)
    reply = await register(system, "w1")
    assert 1 <= len(reply.assigned_tasks) < 12
    assert reply.ByteSize() <= LIMIT
    held = await tasks.ListTasks(pb.ListTasksRequest(assigned_to="w1"))
    assert held.total_size == len(reply.assigned_tasks)


async def test_pages_end_early_and_continue(tasks: Tasks, system: System) -> None:
    created = await create_big(tasks, 20)
    held = len((await register(system, "w1", capacity=20)).assigned_tasks)
    while held < 20:
        held += len((await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=20))).tasks)
    for request in (
        pb.ListTasksRequest(),
        pb.ListTasksRequest(page_size=1000),
        pb.ListTasksRequest(status=pb.TASK_STATUS_IN_PROGRESS),
        pb.ListTasksRequest(assigned_to="w1"),
    ):
        seen: list[str] = []
        pages = 0
        while True:
            page = await tasks.ListTasks(request)
            assert page.ByteSize() <= LIMIT
            assert page.total_size == 20
            seen += [t.id for t in page.tasks]
            pages += 1
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        assert seen == created, request
        assert pages > 1


async def test_get_state_and_watch_fit(tasks: Tasks, system: System) -> None:
    await create_big(tasks, 20)
    state = await system.GetState(system_pb2.GetStateRequest(recent_events=100))
    assert state.ByteSize() <= LIMIT
    assert 1 <= len(state.recent_events) < 20
    assert state.recent_events[0].task.id == "big-019"  # newest first

    stream = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0", max_batch=1000))
    received: list[str] = []
    while len(received) < 20:
        message = await asyncio.wait_for(stream.read(), 10)
        assert message.ByteSize() <= LIMIT
        received += [e.task_id for e in message.events]
    stream.cancel()
    assert received == [f"big-{i:03}" for i in range(20)]


async def test_get_state_pages_instances_by_size(system: System) -> None:
    roles = [f"role-{i:02}-" + "r" * 50 for i in range(32)]  # ~2 KiB per instance
    for i in range(300):
        await system.Register(system_pb2.RegisterRequest(instance_id=f"i-{i:03}", roles=roles))
    seen: set[str] = set()
    request = system_pb2.GetStateRequest(page_size=1000, recent_events=0)
    pages = 0
    while True:
        state = await system.GetState(request)
        assert state.ByteSize() <= LIMIT
        seen |= {i.instance_id for i in state.instances}
        pages += 1
        if not state.next_page_token:
            break
        request.page_token = state.next_page_token
    assert len(seen) == 300
    assert pages > 1


async def test_a_batch_whose_reply_cannot_fit_is_refused_unwritten(tasks: Tasks, system: System) -> None:
    created = await create_big(tasks, 6)
    claimed = list((await register(system, "w1")).assigned_tasks)
    while len(claimed) < 6:
        claimed += (await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=6))).tasks
    result = struct_pb2.Value(string_value="r" * 40_000)
    completions = [pb.CompleteTaskRequest(task_id=t, worker_id="w1", result=result) for t in created]
    details = await rpc_error(
        tasks.CompleteTasks(pb.CompleteTasksRequest(completions=completions)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "split the batch" in details
    listed = await tasks.ListTasks(pb.ListTasksRequest(status=pb.TASK_STATUS_IN_PROGRESS))
    assert listed.total_size == 6  # nothing was completed
    done = await tasks.CompleteTasks(pb.CompleteTasksRequest(completions=completions[:2]))
    assert len(done.tasks) == 2

    batch = pb.CreateTasksRequest(tasks=[big_task(100 + i) for i in range(8)])
    assert batch.ByteSize() < LIMIT
    details = await rpc_error(tasks.CreateTasks(batch), grpc.StatusCode.INVALID_ARGUMENT)
    assert "split the batch" in details
    assert (await tasks.ListTasks(pb.ListTasksRequest())).total_size == 6


async def test_merged_metadata_is_capped(tasks: Tasks) -> None:
    task_id = (await tasks.CreateTask(pb.CreateTaskRequest(text="grows"))).task.id
    for part in range(3):
        update = pb.UpdateTaskRequest(task_id=task_id)
        update.metadata.update({f"part{part}": "y" * 20_000})
        await tasks.UpdateTask(update)
    update = pb.UpdateTaskRequest(task_id=task_id)
    update.metadata.update({"part3": "y" * 20_000})
    details = await rpc_error(tasks.UpdateTask(update), grpc.StatusCode.INVALID_ARGUMENT)
    assert "65536 bytes" in details
    keys = pb.UpdateTaskRequest(task_id=task_id)
    keys.metadata.update({f"k{i}": i for i in range(254)})
    assert "256 keys" in await rpc_error(tasks.UpdateTask(keys), grpc.StatusCode.INVALID_ARGUMENT)
    stored = (await tasks.GetTask(pb.GetTaskRequest(task_id=task_id))).task
    assert sorted(stored.metadata.keys()) == ["part0", "part1", "part2"]


async def test_payloads_are_limited_as_protobuf_too(tasks: Tasks) -> None:
    """A JSON limit alone lets a payload of small numbers grow ~6x as protobuf."""
    numbers = struct_pb2.Value()
    numbers.list_value.extend([0] * 20_000)  # 40 KB as JSON, 220 KB as protobuf
    request = pb.CreateTaskRequest(text="numbers")
    request.metadata.fields["n"].CopyFrom(numbers)
    details = await rpc_error(tasks.CreateTask(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert "as protobuf; the limit is 131072" in details


@pytest.mark.parametrize(
    "value",
    [
        [0] * 3000,
        [[[]]] * 500,
        {f"k{i}": [i, {"a": None, "b": True}] for i in range(200)},
        ['\\"quoted,:[{' * 3] * 200,
        {"nested": {"deeper": {"deepest": [1.5e300, -0.0, "x,y:z"]}}},
    ],
)
async def test_the_scripts_size_bound_is_never_below_the_encoding(
    tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace, value: Any
) -> None:
    request = pb.CreateTaskRequest(text="t,e:x[t{")
    request.metadata.update({"v": value, "w": value} if not isinstance(value, dict) else value)
    task = (await tasks.CreateTask(request)).task
    bound = await redis_client.eval(
        LIB.read_text() + "\nreturn task_wire_bound(redis.call('HGETALL', KEYS[1]))",
        1,
        keys.task(task.id),
    )
    assert int(bound) >= 1 + 3 + task.ByteSize()


async def test_events_leave_out_large_results(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    """Finding 8: an event's size is bounded whatever the result (GetTask has the result), even
    with metadata and error full of characters that JSON escapes."""
    request = pb.CreateTaskRequest(text="\x01" * 500, task_id="escapes")
    request.metadata.update({"q": '"' * 32_000})
    task_id = (await tasks.CreateTask(request)).task.id
    await register(system, "w1")
    result = struct_pb2.Value(string_value="r" * 300_000)
    await tasks.CompleteTask(pb.CompleteTaskRequest(task_id=task_id, worker_id="w1", result=result))
    got = (await tasks.GetTask(pb.GetTaskRequest(task_id=task_id))).task
    assert got.result.string_value == "r" * 300_000
    state = await system.GetState(system_pb2.GetStateRequest(recent_events=1))
    completed = state.recent_events[0]
    assert completed.type == pb.TASK_EVENT_TYPE_COMPLETED
    assert not completed.task.HasField("result")
    assert completed.task.metadata["q"] == '"' * 32_000
    assert completed.ByteSize() < 170 * 1024
    [(_, fields)] = cast(list[tuple[str, dict[str, str]]], await redis_client.xrevrange(keys.events, count=1))
    assert sum(len(k) + len(v.encode()) for k, v in fields.items()) < 170 * 1024
