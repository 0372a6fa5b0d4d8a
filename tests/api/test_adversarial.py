"""Hostile requests (issue 15): deep or non-finite payloads, forged cursors, undecodable bodies,
and the smaller inconsistencies. Each answers a precise status, never UNKNOWN or INTERNAL."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Awaitable
from typing import Any

import grpc
from google.protobuf import duration_pb2, struct_pb2

from claudebench.api.validation import MAX_NESTING
from claudebench.server import ClaudebenchServer
from claudebench.v1 import hooks_pb2, hooks_pb2_grpc, system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import rpc_error

Tasks = tasks_pb2_grpc.TaskServiceStub
System = system_pb2_grpc.SystemServiceStub
SERVICES = (pb.DESCRIPTOR, system_pb2.DESCRIPTOR, hooks_pb2.DESCRIPTOR)


def nested(levels: int) -> Any:
    """A JSON value with `levels` objects and arrays around its leaf (alternating)."""
    value: Any = "leaf"
    for level in range(levels):
        value = {"k": value} if level % 2 else [value]
    return value


def metadata_of(levels: int) -> struct_pb2.Struct:
    """Metadata nesting `levels` objects and arrays, itself counted."""
    struct = struct_pb2.Struct()
    struct.update({"deep": nested(levels - 1)})
    return struct


def decodes_in_pure_python(message_type: str, data: bytes) -> None:
    """Parse `data` with protobuf's pure-Python runtime (in a subprocess: the runtime is chosen at
    import) and fail if it cannot."""
    module, name = message_type.rsplit(".", 1)
    code = (
        f"import sys\nfrom claudebench.v1 import {module} as m\n"
        f"m.{name}.FromString(sys.stdin.buffer.read())\n"
    )
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run(
        [sys.executable, "-c", code], input=data, env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-500:]


async def test_the_deepest_accepted_task_reads_back_everywhere(
    server: ClaudebenchServer, tasks: Tasks, system: System
) -> None:
    details = await rpc_error(
        tasks.CreateTask(pb.CreateTaskRequest(text="x", metadata=metadata_of(MAX_NESTING + 1))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert f"more than {MAX_NESTING} levels" in details
    result = struct_pb2.Value()
    result.list_value.extend([nested(MAX_NESTING)])
    await rpc_error(
        tasks.CompleteTask(pb.CompleteTaskRequest(task_id="t", worker_id="w", result=result)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    watch = tasks.WatchTasks(pb.WatchTasksRequest())
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"]))
    deepest = metadata_of(MAX_NESTING)
    created = (await tasks.CreateTask(pb.CreateTaskRequest(text="deep", metadata=deepest))).task
    assert created.metadata == deepest
    got = await tasks.GetTask(pb.GetTaskRequest(task_id=created.id))
    listed = await tasks.ListTasks(pb.ListTasksRequest())
    claimed = await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1"))
    deep_result = struct_pb2.Value()
    deep_result.list_value.extend([nested(MAX_NESTING - 1)])
    done = await tasks.CompleteTask(
        pb.CompleteTaskRequest(task_id=created.id, worker_id="w1", result=deep_result)
    )
    events = [await asyncio.wait_for(watch.read(), 10) for _ in range(3)]
    watch.cancel()
    replayed = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0"))
    history = [await asyncio.wait_for(replayed.read(), 10) for _ in range(3)]
    replayed.cancel()
    state = await system.GetState(system_pb2.GetStateRequest(recent_events=10))
    assert [e.event.task.metadata for e in events + history] == [deepest] * 6
    assert done.task.result == deep_result
    for message in (got, listed, claimed, done, *events, *history, state):
        decodes_in_pure_python(
            f"{message.DESCRIPTOR.file.name.rsplit('/', 1)[-1][:-6]}_pb2.{message.DESCRIPTOR.name}",
            message.SerializeToString(),
        )


async def test_non_finite_numbers_are_invalid_everywhere(
    server: ClaudebenchServer, channel: grpc.aio.Channel, tasks: Tasks, system: System
) -> None:
    hooks = hooks_pb2_grpc.HookServiceStub(channel)
    for number in (float("nan"), float("inf"), float("-inf")):
        struct = struct_pb2.Struct()
        struct.update({"a": [1, {"b": number}]})
        value = struct_pb2.Value(struct_value=struct)
        for call in (
            tasks.CreateTask(pb.CreateTaskRequest(text="x", metadata=struct)),
            tasks.UpdateTask(pb.UpdateTaskRequest(task_id="t", metadata=struct)),
            tasks.CompleteTask(pb.CompleteTaskRequest(task_id="t", worker_id="w", result=value)),
            system.Register(system_pb2.RegisterRequest(instance_id="w", metadata=struct)),
            hooks.PreToolUse(hooks_pb2.PreToolUseRequest(tool="Bash", instance_id="w", params=value)),
            hooks.PostToolUse(hooks_pb2.PostToolUseRequest(tool="Bash", instance_id="w", result=value)),
            hooks.ConfigureHook(hooks_pb2.ConfigureHookRequest(tool="Bash", config=struct)),
        ):
            assert "NaN and Infinity" in await rpc_error(call, grpc.StatusCode.INVALID_ARGUMENT)


async def test_forged_cursors_and_tokens_are_invalid(tasks: Tasks, system: System) -> None:
    for cursor in ("1-99999999999999999999999", "99999999999999999999999", "\u0661-1"):
        await rpc_error(
            tasks.WatchTasks(pb.WatchTasksRequest(after_event_id=cursor)).read(),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    forged = base64.urlsafe_b64encode(b'{"after":99999999999999999999999,"filter":"instances"}').decode()
    await rpc_error(
        system.GetState(system_pb2.GetStateRequest(page_token=forged)), grpc.StatusCode.INVALID_ARGUMENT
    )
    forged = base64.urlsafe_b64encode(b'{"after":99999999999999999999999,"filter":"|"}').decode()
    await rpc_error(tasks.ListTasks(pb.ListTasksRequest(page_token=forged)), grpc.StatusCode.INVALID_ARGUMENT)


def raw_call(channel: grpc.aio.Channel, path: str, body: bytes, streaming: bool) -> Awaitable[Any]:
    """A call sending `body` as it is (no serializer) and reading its first reply."""
    if streaming:
        stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
        return stream(body).read()
    unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
    return unary(body)


async def test_undecodable_bodies_answer_invalid_argument_on_every_method(channel: grpc.aio.Channel) -> None:
    bodies = (b"\xff\xff\xff", b"\x0a\x80")  # a bad tag; a truncated field
    for file in SERVICES:
        for service in file.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                for body in bodies:
                    call = raw_call(channel, path, body, method.server_streaming)
                    details = await rpc_error(call, grpc.StatusCode.INVALID_ARGUMENT)
                    assert "could not be decoded" in details, (path, details)
    # Text that is not UTF-8 (CreateTaskRequest.text is field 1).
    create = raw_call(channel, "/claudebench.v1.TaskService/CreateTask", b"\x0a\x03\xff\xfe\xfd", False)
    assert "could not be decoded" in await rpc_error(create, grpc.StatusCode.INVALID_ARGUMENT)


async def test_smaller_inconsistencies(
    server: ClaudebenchServer, channel: grpc.aio.Channel, tasks: Tasks, system: System
) -> None:
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"]))
    first = (await tasks.CreateTask(pb.CreateTaskRequest(text="a"))).task
    second = (await tasks.CreateTask(pb.CreateTaskRequest(text="b"))).task
    for status in (pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_FAILED):
        await rpc_error(
            tasks.UpdateTask(pb.UpdateTaskRequest(task_id=second.id, status=status)),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
    await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", max_tasks=2))

    # A second completion with another outcome is refused; the identical retry is idempotent.
    result = struct_pb2.Value()
    result.struct_value.update({"a": 1, "b": 2, "c": [3]})
    done = await tasks.CompleteTask(pb.CompleteTaskRequest(task_id=first.id, worker_id="w1", result=result))
    again = await tasks.CompleteTask(pb.CompleteTaskRequest(task_id=first.id, worker_id="w1", result=result))
    assert again == done
    await rpc_error(
        tasks.CompleteTask(pb.CompleteTaskRequest(task_id=first.id, worker_id="w1", error="boom")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    # Deleting a task in progress needs force, and the holder sees it in the events.
    watch = tasks.WatchTasks(pb.WatchTasksRequest(instance_id="w1", types=[pb.TASK_EVENT_TYPE_DELETED]))
    await rpc_error(
        tasks.DeleteTask(pb.DeleteTaskRequest(task_id=second.id)), grpc.StatusCode.FAILED_PRECONDITION
    )
    await tasks.DeleteTask(pb.DeleteTaskRequest(task_id=second.id, force=True))
    deleted = (await asyncio.wait_for(watch.read(), 10)).event
    watch.cancel()
    assert (deleted.task_id, deleted.instance_id) == (second.id, "w1")

    hooks = hooks_pb2_grpc.HookServiceStub(channel)
    await rpc_error(
        hooks.PostToolUse(hooks_pb2.PostToolUseRequest(tool="Bash")), grpc.StatusCode.INVALID_ARGUMENT
    )
    bad = duration_pb2.Duration(seconds=5, nanos=2_000_000_000)
    await rpc_error(
        system.CheckHealth(system_pb2.CheckHealthRequest(timeout=bad)), grpc.StatusCode.INVALID_ARGUMENT
    )

    # Sizes before conversion: 280k keys (one of them NaN, which conversion would trip on) are
    # refused for their number.
    huge = struct_pb2.Struct()
    huge.update({f"k{i}": True for i in range(280_000)})
    huge["k7"] = float("nan")
    assert "keys; the limit is 256" in await rpc_error(
        tasks.CreateTask(pb.CreateTaskRequest(text="x", metadata=huge)), grpc.StatusCode.INVALID_ARGUMENT
    )
