"""SystemService through real stubs: auto-assignment, health, batches, quorum, state, metrics,
unregistering, and bad input (default liveness TTL)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2 as pb
from claudebench.v1 import system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel, create, pending_ids, rpc_error

System = system_pb2_grpc.SystemServiceStub
Tasks = tasks_pb2_grpc.TaskServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def test_register_auto_assigns_by_priority_within_capacity(tasks: Tasks, system: System) -> None:
    low = await create(tasks, 2, priority=10)
    high = await create(tasks, 2, priority=90)

    worker = await system.Register(pb.RegisterRequest(instance_id="w1", roles=["worker"], max_tasks=3))
    watcher = await system.Register(pb.RegisterRequest(instance_id="s1", roles=["supervisor"]))

    assert [t.id for t in worker.assigned_tasks] == [*high, low[0]]
    assert all(t.status == tasks_pb2.TASK_STATUS_IN_PROGRESS for t in worker.assigned_tasks)
    assert list(watcher.assigned_tasks) == []
    again = await system.Register(pb.RegisterRequest(instance_id="w1", roles=["worker"], max_tasks=3))
    assert list(again.assigned_tasks) == []  # full: re-registering keeps its tasks, takes no more
    held = await tasks.ListTasks(tasks_pb2.ListTasksRequest(assigned_to="w1"))
    assert {t.id for t in held.tasks} == {*high, low[0]}


async def test_check_health_on_demand(tasks: Tasks, system: System) -> None:
    await system.Register(pb.RegisterRequest(instance_id="quiet", roles=["claimer"]))
    await create(tasks, 2)
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="quiet", max_tasks=2))
    await system.Register(pb.RegisterRequest(instance_id="busy"))

    report = await system.CheckHealth(pb.CheckHealthRequest(timeout=duration_pb2.Duration(seconds=3600)))
    assert set(report.healthy) == {"quiet", "busy"}
    assert list(report.failed) == []
    for bad in (duration_pb2.Duration(nanos=5), duration_pb2.Duration(seconds=10**6)):
        await rpc_error(system.CheckHealth(pb.CheckHealthRequest(timeout=bad)), INVALID)


async def test_get_health_statuses(system: System) -> None:
    empty = await system.GetHealth(pb.GetHealthRequest())
    assert (empty.status, empty.redis_ok, empty.reason) == (
        pb.HEALTH_STATUS_DEGRADED,
        True,
        "no instance is registered",
    )
    await system.Register(pb.RegisterRequest(instance_id="w1"))
    healthy = await system.GetHealth(pb.GetHealthRequest())
    assert (healthy.status, healthy.live_instances) == (pb.HEALTH_STATUS_HEALTHY, 1)


async def test_unregister(tasks: Tasks, system: System) -> None:
    await system.Register(pb.RegisterRequest(instance_id="w1", roles=["worker"]))
    ids = await create(tasks, 2)
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", max_tasks=2))

    reply = await system.Unregister(pb.UnregisterRequest(instance_id="w1"))

    assert (reply.unregistered, reply.tasks_released) == (True, 2)
    assert await pending_ids(tasks) == set(ids)
    await rpc_error(system.Unregister(pb.UnregisterRequest(instance_id="w1")), grpc.StatusCode.NOT_FOUND)


async def test_batch_quorum_state_and_metrics(tasks: Tasks, system: System) -> None:
    for name in ("a", "b", "c"):
        await system.Register(pb.RegisterRequest(instance_id=name, roles=["claimer"], max_tasks=2))
    batch = await system.CoordinateBatch(
        pb.CoordinateBatchRequest(batch_id="b1", instance_id="a", total_items=5, processed_items=1)
    )
    rival = await system.CoordinateBatch(pb.CoordinateBatchRequest(batch_id="b1", instance_id="b"))
    assert (batch.acquired, rival.acquired, rival.processor_id, rival.processed_items) == (
        True,
        False,
        "a",
        1,
    )

    votes = [
        await system.QuorumVote(pb.QuorumVoteRequest(decision_id="d", instance_id=n, value="go"))
        for n in ("a", "b")
    ]
    assert [v.quorum_reached for v in votes] == [False, True]
    assert (votes[1].final_decision, votes[1].total_instances) == ("go", 3)

    ids = await create(tasks, 3)
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="a", max_tasks=2))
    await tasks.CompleteTask(
        tasks_pb2.CompleteTaskRequest(task_id=ids[0], worker_id="a", result=struct_pb2.Value(number_value=1))
    )
    state = await system.GetState(pb.GetStateRequest(recent_events=3, page_size=2))
    assert len(state.instances) == 2
    assert state.next_page_token
    rest = await system.GetState(pb.GetStateRequest(page_size=2, page_token=state.next_page_token))
    assert {i.instance_id for i in [*state.instances, *rest.instances]} == {"a", "b", "c"}
    assert not rest.next_page_token
    assert dict(state.task_counts) == {
        "pending": 1,
        "in_progress": 1,
        "completed": 1,
        "failed": 0,
        "scheduled": 0,
        "cancelled": 0,
    }
    assert [e.type for e in state.recent_events] == [
        tasks_pb2.TASK_EVENT_TYPE_COMPLETED,
        tasks_pb2.TASK_EVENT_TYPE_CLAIMED,
        tasks_pb2.TASK_EVENT_TYPE_CLAIMED,
    ]
    assert state.state_version >= 3

    metrics = await system.GetMetrics(pb.GetMetricsRequest())
    assert dict(metrics.task_counts) == dict(state.task_counts)
    assert (metrics.completed_total, metrics.live_instances) == (1, 3)
    by_instance = {m.instance_id: m for m in metrics.instances}
    assert (by_instance["a"].held_tasks, by_instance["a"].tasks_completed) == (1, 1)


@pytest.mark.parametrize(
    ("method", "request_", "message"),
    [
        ("Register", pb.RegisterRequest(), "instance_id is required"),
        ("Register", pb.RegisterRequest(instance_id="w", max_tasks=0), "max_tasks must be between 1"),
        ("Register", pb.RegisterRequest(instance_id="w", roles=["a b"]), "role 'a b'"),
        ("Heartbeat", pb.HeartbeatRequest(instance_id="a*b"), "may contain only"),
        ("Unregister", pb.UnregisterRequest(), "instance_id is required"),
        ("CoordinateBatch", pb.CoordinateBatchRequest(instance_id="w"), "batch_id is required"),
        (
            "CoordinateBatch",
            pb.CoordinateBatchRequest(batch_id="b", instance_id="w", total_items=1, processed_items=2),
            "cannot exceed",
        ),
        (
            "CoordinateBatch",
            pb.CoordinateBatchRequest(batch_id="b", instance_id="w", total_items=-1),
            "total_items must be between 0",
        ),
        ("QuorumVote", pb.QuorumVoteRequest(decision_id="d", instance_id="w"), "value must be"),
        (
            "QuorumVote",
            pb.QuorumVoteRequest(decision_id="d", instance_id="w", value="v", total_instances=0),
            "total_instances must be between 1",
        ),
        ("GetState", pb.GetStateRequest(recent_events=101), "recent_events must be between 0 and 100"),
        ("GetState", pb.GetStateRequest(page_token="x"), "page_token is malformed"),
    ],
)
async def test_bad_input(system: System, method: str, request_: object, message: str) -> None:
    assert message in await rpc_error(getattr(system, method)(request_), INVALID)


async def test_unknown_instance(system: System) -> None:
    await rpc_error(system.Heartbeat(pb.HeartbeatRequest(instance_id="nobody")), grpc.StatusCode.NOT_FOUND)


async def test_racing_instances_get_one_batch_holder(server: ClaudebenchServer) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(5)]
    try:
        replies = await asyncio.gather(
            *(
                system_pb2_grpc.SystemServiceStub(channels[n % 5]).CoordinateBatch(
                    pb.CoordinateBatchRequest(batch_id="contested", instance_id=f"i{n}", total_items=10)
                )
                for n in range(20)
            )
        )
    finally:
        for channel in channels:
            await close_channel(channel)
    holders = [r for r in replies if r.acquired]
    assert len(holders) == 1
    assert {r.processor_id for r in replies} == {holders[0].processor_id}


async def test_check_health_never_shortens_the_heartbeat_contract(
    server: ClaudebenchServer, tasks: Tasks, system: System
) -> None:
    """Issue 15 finding 3: CheckHealth with the smallest timeout cannot declare a worker dead
    that heartbeats within the TTL Register gave it."""
    registered = await system.Register(pb.RegisterRequest(instance_id="steady", roles=["claimer"]))
    ttl_ms = registered.ttl.ToMilliseconds()
    await create(tasks, 2)
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="steady", max_tasks=2))
    keys = server._keys  # the test ages the last heartbeat instead of sleeping
    for _ in range(50):
        # The worker's last heartbeat was a few seconds ago: well within its TTL, beyond 1 s.
        now_ms = int((await server.redis.time())[0]) * 1000
        aged = now_ms - min(5_000, ttl_ms // 2)
        await server.redis.hset(keys.instance("steady"), "lastSeen", aged)
        await server.redis.zadd(keys.liveness, {"steady": aged})
        report = await system.CheckHealth(pb.CheckHealthRequest(timeout=duration_pb2.Duration(seconds=1)))
        assert list(report.failed) == []
    held = await tasks.ListTasks(tasks_pb2.ListTasksRequest(assigned_to="steady"))
    assert len(held.tasks) == 2
    assert (await system.Heartbeat(pb.HeartbeatRequest(instance_id="steady"))).alive
