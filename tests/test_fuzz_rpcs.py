"""Property-based bad input (hypothesis): whatever the fields hold, every RPC answers OK or one of
its documented statuses, never UNKNOWN or INTERNAL, and Redis stays consistent."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import hooks_pb2, hooks_pb2_grpc, system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.invariants import assert_consistent

DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
}
# Ids with the characters that could escape a key's namespace or a Cluster hash slot.
nasty_ids = st.one_of(
    st.text(max_size=140),
    st.sampled_from(["a:b", "{x}", "*", "t-1\nt-2", "..", "-", "cb:task:t-1", "x" * 129, ""]),
)
json_leaf = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=50)
)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)

settings_ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def status_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def loop() -> asyncio.AbstractEventLoop:
    """The test's event loop (the one the server runs on), for the synchronous hypothesis test."""
    return asyncio.get_running_loop()


def struct_of(value: Any) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if isinstance(value, dict):
        struct.update(value)
    return struct


@settings_
@given(
    text=st.text(max_size=600),
    priority=st.one_of(st.none(), ints),
    task_id=st.one_of(st.none(), nasty_ids),
    metadata=json_values,
    page_size=ints,
    page_token=st.text(max_size=60),
    cursor=st.text(max_size=40),
    worker=nasty_ids,
    max_tasks=ints,
)
def test_task_rpcs_answer_only_documented_statuses(
    loop: asyncio.AbstractEventLoop,
    server: ClaudebenchServer,
    tasks: tasks_pb2_grpc.TaskServiceStub,
    system: system_pb2_grpc.SystemServiceStub,
    channel: grpc.aio.Channel,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    text: str,
    priority: int | None,
    task_id: str | None,
    metadata: Any,
    page_size: int,
    page_token: str,
    cursor: str,
    worker: str,
    max_tasks: int,
) -> None:
    async def run() -> None:
        create = pb.CreateTaskRequest(text=text, metadata=struct_of(metadata))
        if priority is not None:
            create.priority = priority
        if task_id is not None:
            create.task_id = task_id
        hooks = hooks_pb2_grpc.HookServiceStub(channel)
        calls = [
            tasks.CreateTask(create),
            tasks.GetTask(pb.GetTaskRequest(task_id=task_id or "")),
            tasks.ListTasks(pb.ListTasksRequest(page_size=page_size, page_token=page_token)),
            tasks.ClaimTask(pb.ClaimTaskRequest(worker_id=worker, max_tasks=max_tasks)),
            tasks.UpdateTask(pb.UpdateTaskRequest(task_id=task_id or "", metadata=struct_of(metadata))),
            tasks.CompleteTask(pb.CompleteTaskRequest(task_id=task_id or "", worker_id=worker, error=text)),
            tasks.DeleteTask(pb.DeleteTaskRequest(task_id=task_id or "")),
            system.Register(system_pb2.RegisterRequest(instance_id=worker, max_tasks=max_tasks)),
            system.Heartbeat(system_pb2.HeartbeatRequest(instance_id=worker)),
            system.QuorumVote(
                system_pb2.QuorumVoteRequest(decision_id=worker, instance_id=worker, value=text)
            ),
            system.CoordinateBatch(
                system_pb2.CoordinateBatchRequest(batch_id=worker, instance_id=worker, total_items=max_tasks)
            ),
            hooks.PreToolUse(hooks_pb2.PreToolUseRequest(tool=worker, instance_id=worker)),
        ]
        for call in calls:
            code = await status_of(call)
            assert code in DOCUMENTED, code
        watch = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id=cursor))
        code = grpc.StatusCode.OK
        try:
            await asyncio.wait_for(watch.read(), 0.2)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
        except TimeoutError:
            pass  # a valid cursor with nothing new: the stream waits
        finally:
            watch.cancel()
        assert code in DOCUMENTED, code
        await assert_consistent(redis_client, keys)

    loop.run_until_complete(run())
