"""SystemService: registration and heartbeats (the rest of the fleet RPCs are not served yet)."""

from __future__ import annotations

import re

import grpc
from google.protobuf import duration_pb2, json_format

from claudebench.api import validation as check
from claudebench.api.guard import guarded
from claudebench.store.instances import InstanceStore
from claudebench.v1 import system_pb2 as pb
from claudebench.v1 import system_pb2_grpc

Ctx = grpc.aio.ServicerContext
_ROLE = re.compile(r"[A-Za-z0-9._-]{1,64}")


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


class SystemService(system_pb2_grpc.SystemServiceServicer):
    """Register and Heartbeat of claudebench.v1.SystemService."""

    def __init__(self, store: InstanceStore, ttl_ms: int, heartbeat_interval_ms: int) -> None:
        self._store = store
        self._ttl_ms = ttl_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms

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
        leadership = await self._store.register(
            instance_id, roles, max_tasks, json_format.MessageToDict(request.metadata)
        )
        return pb.RegisterResponse(
            registered=True,
            became_leader=leadership.became_leader,
            heartbeat_interval=_millis(self._heartbeat_interval_ms),
            ttl=_millis(self._ttl_ms),
        )

    @guarded
    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Ctx[pb.HeartbeatRequest, pb.HeartbeatResponse]
    ) -> pb.HeartbeatResponse:
        leadership = await self._store.heartbeat(check.identifier(request.instance_id, "instance_id"))
        return pb.HeartbeatResponse(alive=True, is_leader=leadership.is_leader)
