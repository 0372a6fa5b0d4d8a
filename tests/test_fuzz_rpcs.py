"""Property-based bad input (hypothesis): whatever the fields hold, every RPC answers OK or one of
its documented statuses, never UNKNOWN or INTERNAL, and Redis stays consistent."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import hooks_pb2, hooks_pb2_grpc, queues_pb2, system_pb2, system_pb2_grpc, tasks_pb2_grpc
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
# Any float, NaN and ±Infinity included (refused: JSON has no such numbers).
json_leaf = st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=50))
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
# Page tokens in the server's format with any position and filter.
forged_tokens = st.builds(
    lambda after, filter_key: base64.urlsafe_b64encode(
        json.dumps({"after": after, "filter": filter_key}).encode()
    ).decode(),
    st.one_of(st.integers(), st.floats(), st.text(max_size=5)),
    st.sampled_from(["instances", "|", "pending|", "x"]),
)
# Stream ids with parts of any size.
forged_cursors = st.builds(lambda ms, seq: f"{ms}-{seq}", st.integers(min_value=0), st.integers(min_value=0))

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


def value_of(value: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    if isinstance(value, dict):
        message.struct_value.update(value)
    elif isinstance(value, list):
        message.list_value.extend(value)
    return message


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
    page_token=st.one_of(st.text(max_size=60), forged_tokens),
    cursor=st.one_of(st.text(max_size=40), forged_cursors),
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
            system.GetState(system_pb2.GetStateRequest(page_token=page_token)),
            tasks.CompleteTask(
                pb.CompleteTaskRequest(task_id=task_id or "", worker_id=worker, result=value_of(metadata))
            ),
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


METHODS = [
    (f"/{service.full_name}/{method.name}", method.server_streaming)
    for file in (pb.DESCRIPTOR, system_pb2.DESCRIPTOR, hooks_pb2.DESCRIPTOR, queues_pb2.DESCRIPTOR)
    for service in file.services_by_name.values()
    for method in service.methods
]


@settings_
@given(body=st.binary(max_size=64), method=st.sampled_from(METHODS))
def test_raw_bytes_answer_only_documented_statuses(
    loop: asyncio.AbstractEventLoop,
    channel: grpc.aio.Channel,
    redis_client: aioredis.Redis,
    keys: Keyspace,
    body: bytes,
    method: tuple[str, bool],
) -> None:
    """Any bytes as the body of any method: decoded or refused (INVALID_ARGUMENT), never UNKNOWN."""

    async def run() -> None:
        path, streaming = method
        code = grpc.StatusCode.OK
        if streaming:
            stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
            call = stream(body)
            try:
                await asyncio.wait_for(call.read(), 0.2)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            except TimeoutError:
                pass  # decoded: a valid watch waits for events
            finally:
                call.cancel()
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
            code = await status_of(unary(body))
        assert code in DOCUMENTED, (path, code)
        await assert_consistent(redis_client, keys)

    loop.run_until_complete(run())
