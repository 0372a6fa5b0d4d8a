"""After SCRIPT FLUSH (a Redis restart, a failover) every RPC still works: scripts reload."""

from __future__ import annotations

import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.keys import Keyspace
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc


async def test_every_rpc_survives_a_script_flush(
    tasks: tasks_pb2_grpc.TaskServiceStub,
    system: system_pb2_grpc.SystemServiceStub,
    redis_client: aioredis.Redis,
) -> None:
    async def flush() -> None:
        await redis_client.script_flush()

    await flush()
    await system.Register(system_pb2.RegisterRequest(instance_id="w1"))
    await flush()
    await system.Heartbeat(system_pb2.HeartbeatRequest(instance_id="w1"))
    await flush()
    a = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="a"))).task
    b = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="b"))).task
    await flush()
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1", max_tasks=2))
    await flush()
    await tasks.UpdateTask(tasks_pb2.UpdateTaskRequest(task_id=a.id, text="a2"))
    await flush()
    await tasks.ReleaseTask(tasks_pb2.ReleaseTaskRequest(task_id=b.id, worker_id="w1"))
    await flush()
    await tasks.AssignTask(tasks_pb2.AssignTaskRequest(task_id=b.id, instance_id="w1"))
    await flush()
    done = await tasks.CompleteTask(
        tasks_pb2.CompleteTaskRequest(task_id=a.id, worker_id="w1", result=struct_pb2.Value(bool_value=True))
    )
    assert done.task.status == tasks_pb2.TASK_STATUS_COMPLETED
    await flush()
    await tasks.DeleteTask(tasks_pb2.DeleteTaskRequest(task_id=b.id, force=True))
    listed = await tasks.ListTasks(tasks_pb2.ListTasksRequest())
    assert [t.id for t in listed.tasks] == [a.id]


async def test_scripts_run_together_reload_what_is_missing(
    system: system_pb2_grpc.SystemServiceStub, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    """Register announces itself with three scripts in one pipeline: after a flush each is loaded
    and run, in order, and each did its part."""
    before = await system.GetState(system_pb2.GetStateRequest())
    await redis_client.script_flush()
    await system.Register(system_pb2.RegisterRequest(instance_id="w1"))
    after = await system.GetState(system_pb2.GetStateRequest())
    assert after.state_version == before.state_version + 1  # SYNC_GLOBAL_STATE
    assert await redis_client.hgetall(keys.gossip) == {"w1": "healthy"}  # GOSSIP_HEALTH_UPDATE
    snapshot = await redis_client.hgetall(keys.global_metrics)  # AGGREGATE_GLOBAL_METRICS
    assert snapshot["liveInstances"] == "1"
