"""TaskService RPCs of the task-lifecycle additions (cancel, retry, progress; schedules are in
api/schedule_rpcs.py).

A base class of TaskService, so that api/task_service.py keeps the original RPCs.
"""

from __future__ import annotations

import grpc

from claudebench.api import lifecycle_checks as lifecycle
from claudebench.api import validation as check
from claudebench.api.codec import task_from_snapshot
from claudebench.api.guard import guarded
from claudebench.store.tasks import TaskStore
from claudebench.v1 import tasks_pb2 as pb
from claudebench.v1 import tasks_pb2_grpc

Ctx = grpc.aio.ServicerContext


class LifecycleRpcs(tasks_pb2_grpc.TaskServiceServicer):
    """Cancel, retry and progress RPCs."""

    _store: TaskStore

    @guarded
    async def CancelTask(
        self, request: pb.CancelTaskRequest, context: Ctx[pb.CancelTaskRequest, pb.CancelTaskResponse]
    ) -> pb.CancelTaskResponse:
        snapshot = await self._store.cancel(
            check.identifier(request.task_id, "task_id"), check.reason(request.reason)
        )
        return pb.CancelTaskResponse(task=task_from_snapshot(snapshot))

    @guarded
    async def RetryTask(
        self, request: pb.RetryTaskRequest, context: Ctx[pb.RetryTaskRequest, pb.RetryTaskResponse]
    ) -> pb.RetryTaskResponse:
        snapshot = await self._store.retry(
            check.identifier(request.task_id, "task_id"), request.reset_attempts
        )
        return pb.RetryTaskResponse(task=task_from_snapshot(snapshot))

    @guarded
    async def ReportProgress(
        self,
        request: pb.ReportProgressRequest,
        context: Ctx[pb.ReportProgressRequest, pb.ReportProgressResponse],
    ) -> pb.ReportProgressResponse:
        return await self._report_progress(request)

    async def _report_progress(self, request: pb.ReportProgressRequest) -> pb.ReportProgressResponse:
        """ReportProgress's logic (also the answer to a Work stream's progress message)."""
        task_id = check.identifier(request.task_id, "task_id")
        worker_id = check.identifier(request.worker_id, "worker_id")
        progress = check.metadata(request.progress, "progress")
        extend = (
            lifecycle.positive_duration_ms(request.extend, "extend", lifecycle.MAX_AHEAD_MS)
            if request.HasField("extend")
            else 0
        )
        reply = await self._store.progress(task_id, worker_id, progress, extend)
        task = task_from_snapshot(reply.task)
        response = pb.ReportProgressResponse(task=task, cancelled=reply.cancelled)
        if task.HasField("lease_deadline"):
            response.lease_deadline.CopyFrom(task.lease_deadline)
        return response
