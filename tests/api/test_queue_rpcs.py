"""Named queues through real gRPC servers: QueueService, worker pools per queue, multi-queue order,
pause/resume, fair dispatch, the concurrency cap under concurrent claimers on two replicas."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, struct_pb2

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import queues_pb2 as qpb
from claudebench.v1 import queues_pb2_grpc, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import system_pb2 as sys_pb
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import close_channel, rpc_error, serving
from tests.invariants import assert_consistent, entries, stream_events

Tasks = tasks_pb2_grpc.TaskServiceStub
System = system_pb2_grpc.SystemServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def queues(channel: grpc.aio.Channel) -> queues_pb2_grpc.QueueServiceStub:
    return queues_pb2_grpc.QueueServiceStub(channel)


async def register(system: System, worker: str, queues: list[str], capacity: int = 100) -> None:
    await system.Register(
        sys_pb.RegisterRequest(instance_id=worker, roles=["claimer"], max_tasks=capacity, queues=queues)
    )


async def create(tasks: Tasks, queue: str, count: int, priority: int = 50, tenant: str = "") -> list[str]:
    metadata = struct_pb2.Struct()
    if tenant:
        metadata.update({"fairness_key": tenant})
    batch = pb.CreateTasksRequest(
        tasks=[
            pb.CreateTaskRequest(text=f"{queue} {i}", queue=queue, priority=priority, metadata=metadata)
            for i in range(count)
        ]
    )
    return [t.id for t in (await tasks.CreateTasks(batch)).tasks]


async def claim(tasks: Tasks, worker: str, n: int = 1, queues: list[str] | None = None) -> list[pb.Task]:
    response = await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id=worker, max_tasks=n, queues=queues or []))
    return list(response.tasks)


async def test_queues_are_listed_configured_paused_and_counted(
    tasks: Tasks, system: System, queues: queues_pb2_grpc.QueueServiceStub
) -> None:
    assert [q.name for q in (await queues.ListQueues(qpb.ListQueuesRequest())).queues] == ["default"]
    await create(tasks, "gpu", 3)
    await register(system, "w1", ["gpu"])
    [held] = await claim(tasks, "w1")
    await tasks.CompleteTask(pb.CompleteTaskRequest(task_id=held.id, worker_id="w1", error="boom"))
    await claim(tasks, "w1")

    gpu = (await queues.GetQueue(qpb.GetQueueRequest(queue="gpu"))).queue
    assert (gpu.pending, gpu.in_progress, gpu.completed, gpu.failed, gpu.paused) == (1, 1, 0, 1, False)
    configured = await queues.ConfigureQueue(
        qpb.ConfigureQueueRequest(
            queue="cpu", concurrency_limit=4, rate_limit=10, rate_window=duration_pb2.Duration(seconds=2)
        )
    )
    assert (configured.queue.concurrency_limit, configured.queue.rate_limit) == (4, 10)
    assert configured.queue.rate_window.seconds == 2
    assert (await queues.PauseQueue(qpb.PauseQueueRequest(queue="cpu"))).queue.paused
    listed = (await queues.ListQueues(qpb.ListQueuesRequest())).queues
    assert [(q.name, q.paused) for q in listed] == [("cpu", True), ("default", False), ("gpu", False)]
    cleared = await queues.ConfigureQueue(qpb.ConfigureQueueRequest(queue="cpu", rate_limit=0))
    assert (cleared.queue.rate_limit, cleared.queue.concurrency_limit) == (0, 4)
    assert not (await queues.ResumeQueue(qpb.ResumeQueueRequest(queue="cpu"))).queue.paused
    # A queue's default_timeout is the lease of its tasks created without a timeout of their own.
    timed = await queues.ConfigureQueue(
        qpb.ConfigureQueueRequest(queue="gpu", default_timeout=duration_pb2.Duration(seconds=30))
    )
    assert timed.queue.default_timeout.seconds == 30
    own = (
        await tasks.CreateTask(
            pb.CreateTaskRequest(text="x", queue="gpu", timeout=duration_pb2.Duration(seconds=5))
        )
    ).task
    default = (await tasks.CreateTask(pb.CreateTaskRequest(text="x", queue="gpu"))).task
    assert (own.timeout.seconds, default.timeout.seconds) == (5, 30)
    # Its default_retry is the policy of its tasks created without one.
    retried = await queues.ConfigureQueue(
        qpb.ConfigureQueueRequest(queue="gpu", default_retry=pb.RetryPolicy(max_attempts=3))
    )
    assert retried.queue.default_retry.max_attempts == 3
    policy = pb.RetryPolicy(max_attempts=2)
    own_retry = (await tasks.CreateTask(pb.CreateTaskRequest(text="x", queue="gpu", retry=policy))).task
    queue_retry = (await tasks.CreateTask(pb.CreateTaskRequest(text="x", queue="gpu"))).task
    plain = (await tasks.CreateTask(pb.CreateTaskRequest(text="x"))).task
    assert (own_retry.max_attempts, queue_retry.max_attempts, plain.max_attempts) == (2, 3, 1)
    gpu_tasks = await tasks.ListTasks(pb.ListTasksRequest(queue="gpu"))
    assert (gpu_tasks.total_size, {t.queue for t in gpu_tasks.tasks}) == (7, {"gpu"})


async def test_bad_queue_input_is_refused_and_writes_nothing(
    tasks: Tasks, system: System, queues: queues_pb2_grpc.QueueServiceStub
) -> None:
    for name in ("a b", "", "x" * 65, "tasks", "instance"):
        await rpc_error(queues.GetQueue(qpb.GetQueueRequest(queue=name)), INVALID)
        await rpc_error(tasks.CreateTask(pb.CreateTaskRequest(text="x", queue=name)), INVALID)
    missing = grpc.StatusCode.NOT_FOUND
    assert "Queue nope does not exist" in await rpc_error(
        queues.GetQueue(qpb.GetQueueRequest(queue="nope")), missing
    )
    await rpc_error(queues.PauseQueue(qpb.PauseQueueRequest(queue="nope")), missing)
    await rpc_error(queues.ResumeQueue(qpb.ResumeQueueRequest(queue="nope")), missing)
    bad = [
        (qpb.ConfigureQueueRequest(queue="q", concurrency_limit=-1), "concurrency_limit must be between"),
        (qpb.ConfigureQueueRequest(queue="q", rate_limit=-5), "rate_limit must be between"),
        (qpb.ConfigureQueueRequest(queue="q", rate_limit=5), "a rate_limit needs a rate_window"),
        (
            qpb.ConfigureQueueRequest(queue="q", rate_limit=5, rate_window=duration_pb2.Duration()),
            "rate_window must be longer than 0",
        ),
        (qpb.ConfigureQueueRequest(queue="q"), "nothing to configure"),
        (
            qpb.ConfigureQueueRequest(queue="q", default_retry=pb.RetryPolicy(max_attempts=2, jitter=2)),
            "default_retry.jitter must be within 0..1",
        ),
        (
            qpb.ConfigureQueueRequest(queue="q", failed_retention=duration_pb2.Duration(seconds=1)),
            "failed_retention is not supported yet",
        ),
        (
            qpb.ConfigureQueueRequest(queue="q", default_timeout=duration_pb2.Duration(seconds=-1)),
            "default_timeout must not be negative",
        ),
    ]
    for request, message in bad:
        assert message in await rpc_error(queues.ConfigureQueue(request), INVALID)
    assert [q.name for q in (await queues.ListQueues(qpb.ListQueuesRequest())).queues] == ["default"]
    tenant = struct_pb2.Struct()
    tenant.update({"fairness_key": 7})
    await rpc_error(tasks.CreateTask(pb.CreateTaskRequest(text="x", metadata=tenant)), INVALID)
    await rpc_error(system.Register(sys_pb.RegisterRequest(instance_id="w", queues=["a", "a"])), INVALID)
    await register(system, "w1", ["gpu"])
    not_registered = await rpc_error(tasks.ClaimTask(pb.ClaimTaskRequest(worker_id="w1", queues=["cpu"])),
                                     grpc.StatusCode.FAILED_PRECONDITION)  # fmt: skip
    assert "not registered for queue cpu" in not_registered


async def test_two_pools_never_get_each_others_tasks_and_a_worker_of_both_gets_priority_then_age(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    gpu = await create(tasks, "gpu", 5)
    cpu = await create(tasks, "cpu", 5)
    await register(system, "g", ["gpu"])
    await register(system, "c", ["cpu"])
    assert [t.id for t in await claim(tasks, "g", 10)] == gpu
    assert [t.id for t in await claim(tasks, "c", 10)] == cpu

    old_cpu = await create(tasks, "cpu", 2)
    gpu_urgent = await create(tasks, "gpu", 1, priority=90)
    new_gpu = await create(tasks, "gpu", 2)
    newest_cpu = await create(tasks, "cpu", 1)
    await register(system, "both", ["gpu", "cpu"])
    order = [t.id for t in await claim(tasks, "both", 2)] + [t.id for t in await claim(tasks, "both", 10)]
    assert order == gpu_urgent + old_cpu + new_gpu + newest_cpu
    only_cpu = await create(tasks, "cpu", 1) + await create(tasks, "gpu", 1)
    assert [t.id for t in await claim(tasks, "both", 5, queues=["cpu"])] == only_cpu[:1]
    await assert_consistent(redis_client, keys)


async def test_a_paused_queue_hands_out_nothing_until_resumed_and_loses_nothing(
    tasks: Tasks,
    system: System,
    queues: queues_pb2_grpc.QueueServiceStub,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    await register(system, "w1", ["jobs"])
    first = await create(tasks, "jobs", 1)
    [held] = await claim(tasks, "w1")
    await queues.PauseQueue(qpb.PauseQueueRequest(queue="jobs"))
    await queues.PauseQueue(qpb.PauseQueueRequest(queue="jobs"))  # idempotent: one event
    ids = await create(tasks, "jobs", 20)  # a paused queue accepts tasks
    assert await claim(tasks, "w1", 10) == []
    await register(system, "w2", ["jobs"])  # nor does auto-assignment take from it
    assert (await queues.GetQueue(qpb.GetQueueRequest(queue="jobs"))).queue.pending == 20
    # A task in progress finishes normally.
    await tasks.CompleteTask(
        pb.CompleteTaskRequest(task_id=held.id, worker_id="w1", result=struct_pb2.Value())
    )
    await queues.ResumeQueue(qpb.ResumeQueueRequest(queue="jobs"))
    got = [t.id for t in await claim(tasks, "w1", 50)]
    assert got == ids
    assert first == [held.id]
    system_events = [fields for _, fields in await entries(redis_client, keys.system_events)]
    assert [(e["type"], e["data"]) for e in system_events if e["type"].startswith("queue.")] == [
        ("queue.paused", '{"queue":"jobs"}'),
        ("queue.resumed", '{"queue":"jobs"}'),
    ]
    await assert_consistent(redis_client, keys)


async def test_one_tenants_burst_cannot_starve_another(
    tasks: Tasks, system: System, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    burst = await create(tasks, "shared", 1000, tenant="A")
    small = await create(tasks, "shared", 10, tenant="B")
    await register(system, "w1", ["shared"], capacity=1000)
    first_twenty = [t.id for _ in range(20) for t in await claim(tasks, "w1", 1)]
    assert set(small) <= set(first_twenty)
    assert first_twenty[:4] == [burst[0], small[0], burst[1], small[1]]
    rest = [t.id for t in await claim(tasks, "w1", 100)] + [t.id for t in await claim(tasks, "w1", 100)]
    assert rest == burst[10:210]  # A's tasks in their order once B has none left
    await assert_consistent(redis_client, keys)


async def test_concurrency_cap_holds_under_concurrent_claimers_on_two_replicas(
    settings: Settings,
    channel: grpc.aio.Channel,
    queues: queues_pb2_grpc.QueueServiceStub,
    tasks: Tasks,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    cap, total, claimers = 5, 2000, 8
    await queues.ConfigureQueue(qpb.ConfigureQueueRequest(queue="capped", concurrency_limit=cap))
    for _ in range(total // 500):
        await create(tasks, "capped", 500)

    async def worker(stubs: tuple[Tasks, System], n: int) -> list[str]:
        task_stub, system_stub = stubs
        name = f"worker-{n}"
        await register(system_stub, name, ["capped"], capacity=1 + n % 3)
        taken: list[str] = []
        while True:
            batch = await claim(task_stub, name, 1 + n % 3)
            if not batch:
                queue = (await queues.GetQueue(qpb.GetQueueRequest(queue="capped"))).queue
                if queue.pending == 0:
                    return taken
                await asyncio.sleep(0.002)
                continue
            for task in batch:
                taken.append(task.id)
                await asyncio.sleep(random.random() / 1000)
                await task_stub.CompleteTask(
                    pb.CompleteTaskRequest(task_id=task.id, worker_id=name, result=struct_pb2.Value())
                )

    async with serving(settings) as (_, second):
        stubs = [(Tasks(c), System(c)) for c in (channel, second)]
        results = await asyncio.gather(*(worker(stubs[n % 2], n) for n in range(claimers)))
    claimed = [task_id for ids in results for task_id in ids]
    assert len(set(claimed)) == len(claimed) == total, "every task claimed exactly once"
    running, most = 0, 0
    for event in await stream_events(redis_client, keys):
        if event["type"] == "claimed":
            running += 1
        elif event["type"] == "completed":
            running -= 1
        most = max(most, running)
    assert most == cap, f"at most {most} in progress at once; the cap is {cap}"
    await assert_consistent(redis_client, keys)


async def test_rate_limit_holds_under_concurrent_claimers(
    server: ClaudebenchServer,
    queues: queues_pb2_grpc.QueueServiceStub,
    tasks: Tasks,
    redis_client: aioredis.Redis,
    keys: Keyspace,
) -> None:
    """20 claims per 500 ms, six claimers on separate channels for 1.6 s: in any 500 ms (from the
    claim events' times, the clock the script used) at most 20 claims, and the limit was reached."""
    limit, window_ms = 20, 500
    await queues.ConfigureQueue(
        qpb.ConfigureQueueRequest(
            queue="api", rate_limit=limit, rate_window=duration_pb2.Duration(nanos=window_ms * 1_000_000)
        )
    )
    await create(tasks, "api", 500)

    async def claimer(n: int, stop_at: float) -> None:
        own = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            stub = Tasks(own)
            await register(System(own), f"w{n}", ["api"], capacity=1000)
            while asyncio.get_running_loop().time() < stop_at:
                response = await stub.ClaimTask(pb.ClaimTaskRequest(worker_id=f"w{n}", max_tasks=5))
                if not response.tasks:
                    await asyncio.sleep(0.005)
        finally:
            await close_channel(own)

    stop_at = asyncio.get_running_loop().time() + 1.6
    await asyncio.gather(*(claimer(n, stop_at) for n in range(6)))
    times = sorted(int(e["time"]) for e in await stream_events(redis_client, keys) if e["type"] == "claimed")
    in_window = [sum(1 for s in times if t - window_ms < s <= t) for t in times]
    assert max(in_window) == limit, f"at most {max(in_window)} claims in a window; the limit is {limit}"
    assert len(times) > limit  # the window slid: more than one window's worth was handed out
