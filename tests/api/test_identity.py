"""Issue 15 finding 5: with tokens configured, an instance id belongs to the token that registered
it (or to the token configured for it); other worker tokens get PERMISSION_DENIED on every RPC that
acts as that instance; admin tokens act for all. Real tokens over a real server."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.api.auth import may_call, parse_auth
from claudebench.api.identity import ACTS_AS
from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.v1 import hooks_pb2, hooks_pb2_grpc, system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import rpc_error

ADMIN, ALICE, BOB, BUILDER = "adm-tok-1", "alice-tok-2", "bob-tok-3", "build-tok-4"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    spec = f"{ADMIN}:admin,{ALICE}:worker,{BOB}:worker,{BUILDER}:worker:build-*|ci"
    return dataclasses.replace(settings, auth_tokens=spec)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


class Client:
    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self.auth = bearer(token)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        self.system = system_pb2_grpc.SystemServiceStub(channel)
        self.hooks = hooks_pb2_grpc.HookServiceStub(channel)

    async def register(self, instance_id: str, capacity: int = 10) -> system_pb2.RegisterResponse:
        reply: system_pb2.RegisterResponse = await self.system.Register(
            system_pb2.RegisterRequest(instance_id=instance_id, roles=["worker"], max_tasks=capacity),
            metadata=self.auth,
        )
        return reply

    async def held_task(self, worker: str) -> str:
        created = await self.tasks.CreateTask(pb.CreateTaskRequest(text="job"), metadata=self.auth)
        claimed = await self.tasks.ClaimTask(pb.ClaimTaskRequest(worker_id=worker), metadata=self.auth)
        task_id: str = created.task.id
        assert [t.id for t in claimed.tasks] == [task_id]
        return task_id


async def status_of(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def work_hello(c: Client, instance: str) -> pb.WorkResponse:
    """A Work stream's hello as `instance`: its first reply (the ack), then the stream ends."""
    stream = c.tasks.Work(metadata=c.auth)
    try:
        await stream.write(pb.WorkRequest(hello=pb.WorkHello(worker_id=instance)))
        reply: Any = await stream.read()
        if reply is grpc.aio.EOF:
            await stream.wait_for_connection()
            raise AssertionError(f"Work ended: {await stream.code()} {await stream.details()}")
        return cast(pb.WorkResponse, reply)
    finally:
        stream.cancel()


def acting_calls(c: Client, instance: str, task_id: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call per RPC of ACTS_AS, acting as `instance`."""
    result = struct_pb2.Value(string_value="done")
    return {
        "Work": lambda: work_hello(c, instance),
        "Register": lambda: c.register(instance, capacity=1000),
        "Heartbeat": lambda: c.system.Heartbeat(
            system_pb2.HeartbeatRequest(instance_id=instance), metadata=c.auth
        ),
        "Unregister": lambda: c.system.Unregister(
            system_pb2.UnregisterRequest(instance_id=instance), metadata=c.auth
        ),
        "ClaimTask": lambda: c.tasks.ClaimTask(pb.ClaimTaskRequest(worker_id=instance), metadata=c.auth),
        "CompleteTask": lambda: c.tasks.CompleteTask(
            pb.CompleteTaskRequest(task_id=task_id, worker_id=instance, result=result), metadata=c.auth
        ),
        "CompleteTasks": lambda: c.tasks.CompleteTasks(
            pb.CompleteTasksRequest(
                completions=[pb.CompleteTaskRequest(task_id=task_id, worker_id=instance, result=result)]
            ),
            metadata=c.auth,
        ),
        "ReleaseTask": lambda: c.tasks.ReleaseTask(
            pb.ReleaseTaskRequest(task_id=task_id, worker_id=instance), metadata=c.auth
        ),
        "ReportProgress": lambda: c.tasks.ReportProgress(
            pb.ReportProgressRequest(task_id=task_id, worker_id=instance), metadata=c.auth
        ),
        "CoordinateBatch": lambda: c.system.CoordinateBatch(
            system_pb2.CoordinateBatchRequest(batch_id="b1", instance_id=instance), metadata=c.auth
        ),
        "QuorumVote": lambda: c.system.QuorumVote(
            system_pb2.QuorumVoteRequest(decision_id="d1", instance_id=instance, value="yes"),
            metadata=c.auth,
        ),
        "PreToolUse": lambda: c.hooks.PreToolUse(
            hooks_pb2.PreToolUseRequest(tool="Read", instance_id=instance), metadata=c.auth
        ),
        "PostToolUse": lambda: c.hooks.PostToolUse(
            hooks_pb2.PostToolUseRequest(tool="Read", instance_id=instance, success=True),
            metadata=c.auth,
        ),
    }


async def test_every_acting_rpc_refuses_another_tokens_instance(
    channel: grpc.aio.Channel, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    alice, bob = Client(channel, ALICE), Client(channel, BOB)
    await alice.register("w-alice")
    task_id = await alice.held_task("w-alice")
    calls = acting_calls(bob, "w-alice", task_id)
    assert set(calls) == set(ACTS_AS)  # every RPC of the table is tried
    for name, call in calls.items():
        details = await rpc_error(call(), grpc.StatusCode.PERMISSION_DENIED)
        if not may_call("worker", name):  # not a worker's RPC yet (ReportProgress)
            continue
        assert "belongs to the token that registered it" in details, name
        assert ALICE not in details
        assert BOB not in details
    # Nothing changed: alice still holds her task with her capacity.
    got = await alice.tasks.GetTask(pb.GetTaskRequest(task_id=task_id), metadata=alice.auth)
    assert (got.task.status, got.task.assigned_to) == (pb.TASK_STATUS_IN_PROGRESS, "w-alice")
    stored = await redis_client.hgetall(keys.instance("w-alice"))
    assert stored["maxTasks"] == "10"
    assert stored["owner"] == hashlib.sha256(ALICE.encode()).hexdigest()
    assert ALICE not in str(stored)

    # The owner is never refused (Unregister last; some calls fail on the task's state, e.g.
    # ReleaseTask of the task CompleteTask just finished, which is not a refusal of identity).
    own = acting_calls(alice, "w-alice", task_id)
    for name in sorted(own, key=lambda n: n == "Unregister"):
        if not may_call("worker", name):
            continue
        code = await status_of(own[name]())
        assert code != grpc.StatusCode.PERMISSION_DENIED, name
        assert code == grpc.StatusCode.OK or name not in ("Register", "Heartbeat", "CompleteTask"), name


async def test_a_work_stream_may_not_act_as_another_tokens_instance_later_either(
    channel: grpc.aio.Channel,
) -> None:
    """The hello is checked, and so is every later message of the stream (a completion naming
    another token's instance ends the stream with PERMISSION_DENIED, nothing written)."""
    alice, bob = Client(channel, ALICE), Client(channel, BOB)
    await alice.register("w-alice")
    task_id = await alice.held_task("w-alice")
    await bob.register("w-bob")
    stream = bob.tasks.Work(metadata=bob.auth)
    await stream.write(pb.WorkRequest(hello=pb.WorkHello(worker_id="w-bob")))
    assert (await stream.read()).WhichOneof("kind") == "ack"
    done = struct_pb2.Value(string_value="stolen")
    complete = pb.CompleteTaskRequest(task_id=task_id, worker_id="w-alice", result=done)
    await stream.write(pb.WorkRequest(complete=complete))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.read()  # the stream ends at the completion (no ack for it)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "belongs to the token that registered it" in str(info.value.details())
    got = await alice.tasks.GetTask(pb.GetTaskRequest(task_id=task_id), metadata=alice.auth)
    assert (got.task.status, got.task.assigned_to) == (pb.TASK_STATUS_IN_PROGRESS, "w-alice")


async def test_admin_acts_for_every_instance_and_keeps_the_owner(channel: grpc.aio.Channel) -> None:
    alice, admin = Client(channel, ALICE), Client(channel, ADMIN)
    await alice.register("w-alice")
    task_id = await alice.held_task("w-alice")
    await admin.system.Heartbeat(system_pb2.HeartbeatRequest(instance_id="w-alice"), metadata=admin.auth)
    await admin.register("w-alice", capacity=5)  # re-registered by an admin: still alice's
    await admin.tasks.ReleaseTask(
        pb.ReleaseTaskRequest(task_id=task_id, worker_id="w-alice"), metadata=admin.auth
    )
    await alice.system.Heartbeat(system_pb2.HeartbeatRequest(instance_id="w-alice"), metadata=alice.auth)
    await admin.register("w-admin")
    bob = Client(channel, BOB)
    await rpc_error(bob.register("w-admin"), grpc.StatusCode.PERMISSION_DENIED)


async def test_configured_instance_ids(channel: grpc.aio.Channel) -> None:
    builder, alice = Client(channel, BUILDER), Client(channel, ALICE)
    await builder.register("build-1")
    await builder.register("ci")
    details = await rpc_error(builder.register("w-other"), grpc.StatusCode.PERMISSION_DENIED)
    assert "only as the instances configured for it (build-*, ci)" in details
    details = await rpc_error(alice.register("build-7"), grpc.StatusCode.PERMISSION_DENIED)
    assert "configured for another token" in details
    await alice.register("build")  # not matched by build-* (it needs the dash)
    await builder.system.Heartbeat(system_pb2.HeartbeatRequest(instance_id="ci"), metadata=builder.auth)


async def test_two_tokens_registering_one_new_id_cannot_both_win(channel: grpc.aio.Channel) -> None:
    alice, bob = Client(channel, ALICE), Client(channel, BOB)
    for round_ in range(10):
        instance = f"contested-{round_}"
        outcomes = await asyncio.gather(
            alice.register(instance), bob.register(instance), return_exceptions=True
        )
        won = [o for o in outcomes if not isinstance(o, BaseException)]
        lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(won) == 1, outcomes
        assert len(lost) == 1, outcomes
        assert lost[0].code() == grpc.StatusCode.PERMISSION_DENIED


async def test_unregistered_ids_are_free_again(channel: grpc.aio.Channel) -> None:
    alice, bob = Client(channel, ALICE), Client(channel, BOB)
    await alice.register("w-shared")
    await alice.system.Unregister(system_pb2.UnregisterRequest(instance_id="w-shared"), metadata=alice.auth)
    await bob.register("w-shared")
    await rpc_error(alice.register("w-shared"), grpc.StatusCode.PERMISSION_DENIED)


def test_auth_spec_with_instance_ids(tmp_path: Any) -> None:
    assert parse_auth("a:admin,w:worker:w1|build-*") == {
        "a": ("admin", ()),
        "w": ("worker", ("w1", "build-*")),
    }
    path = tmp_path / "tokens"
    path.write_text("t1 worker ns:w1|ns:w2\nt2 reader\n")
    assert parse_auth(str(path)) == {"t1": ("worker", ("ns:w1", "ns:w2")), "t2": ("reader", ())}
    with pytest.raises(SystemExit, match="separated by"):
        parse_auth("w:worker:w{1}")
