"""SystemService: registration, liveness, failure recovery, batches, quorum, state, metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from redis import exceptions as redis_errors

from claudebench.api import validation as check
from claudebench.api.codec import event_from_entry, task_from_snapshot
from claudebench.api.guard import guarded
from claudebench.api.lifecycle_checks import register_queues
from claudebench.keys import ALL_TASK_STATUSES, KEY_SCHEMA_VERSION
from claudebench.store.coordination import CoordinationStore
from claudebench.store.instances import InstanceStore
from claudebench.store.recovery import FleetRecovery
from claudebench.store.tasks import TaskStore
from claudebench.v1 import system_pb2 as pb
from claudebench.v1 import system_pb2_grpc

Ctx = grpc.aio.ServicerContext
_ROLE = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_VALUE_CHARS = 256
MAX_BATCH_ITEMS = 2**31 - 1
METRICS_INSTANCES = 100
MIN_CHECK_TIMEOUT_MS = 1_000
MAX_CHECK_TIMEOUT_MS = 24 * 3600 * 1000


def _roles(roles: list[str]) -> list[str]:
    if len(roles) > check.MAX_ROLES:
        raise check.InvalidArgument(f"{len(roles)} roles given; the limit is {check.MAX_ROLES}")
    for role in roles:
        if not _ROLE.fullmatch(role):
            raise check.InvalidArgument(
                f"role {role[:40]!r} must be 1..64 letters, digits or the characters . _ -"
            )
    return sorted(set(roles))


def _millis(ms: int) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMilliseconds(ms)
    return duration


def health_status(counts: dict[str, Any]) -> tuple[pb.HealthStatus, str]:
    """The documented rules: UNHEALTHY when instances exist and none is live; DEGRADED when none is
    registered, some are silent awaiting recovery, or a partition is suspected; else HEALTHY."""
    live, stale = int(counts["live"]), int(counts["stale"])
    if live == 0 and stale > 0:
        return pb.HEALTH_STATUS_UNHEALTHY, f"all {stale} registered instances are silent"
    if live + stale == 0:
        return pb.HEALTH_STATUS_DEGRADED, "no instance is registered"
    if stale > 0:
        return pb.HEALTH_STATUS_DEGRADED, f"{stale} of {live + stale} instances are silent"
    if counts["partition"]:
        return pb.HEALTH_STATUS_DEGRADED, "a network partition is suspected (gossip)"
    return pb.HEALTH_STATUS_HEALTHY, ""


class SystemService(system_pb2_grpc.SystemServiceServicer):
    """The SystemService of claudebench.v1 (see the README for each RPC's scripts and guarantees)."""

    def __init__(
        self,
        instances: InstanceStore,
        tasks: TaskStore,
        coordination: CoordinationStore,
        recovery: FleetRecovery,
        ttl_ms: int,
        heartbeat_interval_ms: int,
        script_version: str,
    ) -> None:
        self._instances = instances
        self._tasks = tasks
        self._coordination = coordination
        self._recovery = recovery
        self._ttl_ms = ttl_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._script_version = script_version

    @guarded
    async def Register(
        self, request: pb.RegisterRequest, context: Ctx[pb.RegisterRequest, pb.RegisterResponse]
    ) -> pb.RegisterResponse:
        instance_id = check.identifier(request.instance_id, "instance_id")
        roles = _roles(list(request.roles))
        max_tasks = (
            check.in_range(request.max_tasks, "max_tasks", 1, check.MAX_INSTANCE_CAPACITY)
            if request.HasField("max_tasks")
            else check.DEFAULT_INSTANCE_CAPACITY
        )
        check.metadata(request.metadata)  # same limits as task metadata
        queues = register_queues(request)
        leadership = await self._instances.register(
            instance_id, roles, max_tasks, json_format.MessageToDict(request.metadata), queues
        )
        assigned = await self._tasks.auto_assign(instance_id, queues) if "worker" in roles else []
        await self._instances.gossip(instance_id, "healthy")
        await self._coordination.sync_global_state(
            {"action": "instance_registered", "instanceId": instance_id, "roles": roles}
        )
        await self._coordination.aggregate_metrics()
        return pb.RegisterResponse(
            registered=True,
            became_leader=leadership.became_leader,
            assigned_tasks=[task_from_snapshot(s) for s in assigned],
            heartbeat_interval=_millis(self._heartbeat_interval_ms),
            ttl=_millis(self._ttl_ms),
        )

    @guarded
    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Ctx[pb.HeartbeatRequest, pb.HeartbeatResponse]
    ) -> pb.HeartbeatResponse:
        leadership = await self._instances.heartbeat(check.identifier(request.instance_id, "instance_id"))
        return pb.HeartbeatResponse(alive=True, is_leader=leadership.is_leader)

    @guarded
    async def Unregister(
        self, request: pb.UnregisterRequest, context: Ctx[pb.UnregisterRequest, pb.UnregisterResponse]
    ) -> pb.UnregisterResponse:
        instance_id = check.identifier(request.instance_id, "instance_id")
        released = await self._instances.unregister(instance_id)
        await self._coordination.sync_global_state(
            {"action": "instance_unregistered", "instanceId": instance_id, "tasksReleased": released}
        )
        return pb.UnregisterResponse(unregistered=True, tasks_released=released)

    @guarded
    async def CheckHealth(
        self, request: pb.CheckHealthRequest, context: Ctx[pb.CheckHealthRequest, pb.CheckHealthResponse]
    ) -> pb.CheckHealthResponse:
        # An instance is dead only once it broke its heartbeat contract (the TTL Register gave it):
        # a timeout can lengthen that, never shorten it.
        timeout_ms = self._ttl_ms
        if request.HasField("timeout"):
            asked = check.in_range(
                check.duration_ms(request.timeout, "timeout"),
                "timeout (ms)",
                MIN_CHECK_TIMEOUT_MS,
                MAX_CHECK_TIMEOUT_MS,
            )
            timeout_ms = max(asked, self._ttl_ms)
        report = await self._recovery.check(timeout_ms)
        return pb.CheckHealthResponse(
            healthy=report.healthy, failed=report.failed, reassigned=report.reassigned
        )

    @guarded
    async def GetHealth(
        self, request: pb.GetHealthRequest, context: Ctx[pb.GetHealthRequest, pb.GetHealthResponse]
    ) -> pb.GetHealthResponse:
        try:
            counts = await self._coordination.health_counts()
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            # Health answers even when Redis does not: that is the answer.
            return pb.GetHealthResponse(
                status=pb.HEALTH_STATUS_UNHEALTHY, redis_ok=False, reason=f"Redis is unreachable: {exc}"
            )
        status, reason = health_status(counts)
        return pb.GetHealthResponse(
            status=status,
            redis_ok=True,
            live_instances=int(counts["live"]),
            offline_instances=int(counts["offline"]),
            stale_instances=int(counts["stale"]),
            partition_suspected=bool(counts["partition"]),
            reason=reason,
        )

    @guarded
    async def CoordinateBatch(
        self,
        request: pb.CoordinateBatchRequest,
        context: Ctx[pb.CoordinateBatchRequest, pb.CoordinateBatchResponse],
    ) -> pb.CoordinateBatchResponse:
        batch_id = check.identifier(request.batch_id, "batch_id")
        instance_id = check.identifier(request.instance_id, "instance_id")
        total = check.in_range(request.total_items, "total_items", 0, MAX_BATCH_ITEMS)
        processed = check.in_range(request.processed_items, "processed_items", 0, MAX_BATCH_ITEMS)
        if total and processed > total:
            raise check.InvalidArgument(f"processed_items ({processed}) cannot exceed total_items ({total})")
        state = await self._coordination.coordinate_batch(
            batch_id, instance_id, total, processed, request.done
        )
        return pb.CoordinateBatchResponse(
            acquired=state.acquired,
            processor_id=state.processor,
            processed_items=state.processed,
            total_items=state.total,
            completed=state.completed,
        )

    @guarded
    async def QuorumVote(
        self, request: pb.QuorumVoteRequest, context: Ctx[pb.QuorumVoteRequest, pb.QuorumVoteResponse]
    ) -> pb.QuorumVoteResponse:
        decision_id = check.identifier(request.decision_id, "decision_id")
        instance_id = check.identifier(request.instance_id, "instance_id")
        if not request.value or len(request.value) > MAX_VALUE_CHARS:
            raise check.InvalidArgument(f"value must be 1..{MAX_VALUE_CHARS} characters")
        total = (
            check.in_range(request.total_instances, "total_instances", 1, 100_000)
            if request.HasField("total_instances")
            else None
        )
        state = await self._coordination.quorum_vote(decision_id, instance_id, request.value, total)
        return pb.QuorumVoteResponse(
            voted=state.voted,
            quorum_reached=state.reached,
            final_decision=state.decision,
            vote_count=state.votes,
            agreeing_votes=state.agreeing,
            total_instances=state.total,
        )

    @guarded
    async def GetState(
        self, request: pb.GetStateRequest, context: Ctx[pb.GetStateRequest, pb.GetStateResponse]
    ) -> pb.GetStateResponse:
        recent = (
            check.in_range(request.recent_events, "recent_events", 0, 100)
            if request.HasField("recent_events")
            else 10
        )
        page_size = check.bounded_count(
            request.page_size, "page_size", check.DEFAULT_PAGE_SIZE, check.MAX_PAGE_SIZE
        )
        offset = check.decode_page_token(request.page_token, "instances") or 0
        ids = await self._instances.page_by_last_seen(offset, page_size + 1)
        state = await self._coordination.system_state(ids[:page_size], recent)
        return pb.GetStateResponse(
            instances=[
                pb.InstanceState(
                    instance_id=i["id"],
                    roles=json.loads(i.get("roles") or "[]"),
                    status=i["status"],
                    max_tasks=int(i.get("maxTasks") or 0),
                    held_tasks=int(i["held"]),
                    last_seen=_timestamp_ms(int(i.get("lastSeen") or 0)),
                )
                for i in state["instances"]
            ],
            task_counts={s: int(state["counts"][s]) for s in ALL_TASK_STATUSES},
            recent_events=[
                event_from_entry(entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))
                for entry_id, flat in state["events"]
            ],
            state_version=int(state["version"]),
            script_version=self._script_version,
            key_schema_version=KEY_SCHEMA_VERSION,
            next_page_token=(
                check.encode_page_token(offset + page_size, "instances") if len(ids) > page_size else ""
            ),
        )

    @guarded
    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: Ctx[pb.GetMetricsRequest, pb.GetMetricsResponse]
    ) -> pb.GetMetricsResponse:
        snapshot = await self._coordination.aggregate_metrics()
        per_script = await self._coordination.script_metrics()
        instances = await self._instances.metrics_of_live(METRICS_INSTANCES)
        return pb.GetMetricsResponse(
            task_counts={s: int(snapshot[s]) for s in ALL_TASK_STATUSES},
            throughput_per_second=float(snapshot["throughputPerSecond"]),
            average_wait_ms=float(snapshot["averageWaitMs"]),
            scripts=_script_metrics(per_script),
            completed_total=int(snapshot["completedTotal"]),
            failed_total=int(snapshot["failedTotal"]),
            live_instances=int(snapshot["liveInstances"]),
            stale_instances=int(snapshot["staleInstances"]),
            offline_instances=int(snapshot["offlineInstances"]),
            event_stream_length=int(snapshot["eventStreamLength"]),
            instances=[
                pb.InstanceMetrics(
                    instance_id=m.instance_id,
                    held_tasks=m.held,
                    tasks_completed=m.completed,
                    tasks_failed=m.failed,
                )
                for m in instances
            ],
        )


def _timestamp_ms(ms: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _script_metrics(flat: dict[str, str]) -> dict[str, pb.ScriptMetrics]:
    """{"TASK_CLAIM:calls": "3", ...} -> {"TASK_CLAIM": ScriptMetrics(...)}."""
    by_script: dict[str, dict[str, float]] = {}
    for field, value in flat.items():
        name, _, measure = field.rpartition(":")
        by_script.setdefault(name, {})[measure] = float(value)
    out = {}
    for name, measures in by_script.items():
        calls = int(measures.get("calls", 0))
        total_ms = measures.get("totalMs", 0.0)
        out[name] = pb.ScriptMetrics(
            calls=calls,
            total_ms=total_ms,
            errors=int(measures.get("errors", 0)),
            average_ms=total_ms / calls if calls else 0.0,
        )
    return out
