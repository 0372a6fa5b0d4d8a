"""An asyncio client: typed methods over the generated stubs, with deadlines and retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack

import grpc
from google.protobuf import json_format, struct_pb2

from claudebench.client.channel import Security, aio_channel
from claudebench.client.events import WATCH_BATCH, events_in
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc

_RESUMABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


def to_value(value: Any) -> struct_pb2.Value:
    return json_format.ParseDict(value, struct_pb2.Value())


def to_struct(mapping: Mapping[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if mapping:
        struct.update(mapping)
    return struct


def create_request(
    text: str, priority: int | None, metadata: Mapping[str, Any] | None, task_id: str | None
) -> tasks_pb2.CreateTaskRequest:
    """A CreateTaskRequest, leaving priority and task_id unset (server defaults) when None."""
    request = tasks_pb2.CreateTaskRequest(text=text, metadata=to_struct(metadata))
    if priority is not None:
        request.priority = priority
    if task_id is not None:
        request.task_id = task_id
    return request


class AsyncClient:
    """`async with AsyncClient("127.0.0.1:50051") as client: await client.create_task("...")`.

    Every call has a deadline (`timeout`, seconds); idempotent calls are retried on UNAVAILABLE by
    gRPC itself (see claudebench.client.channel). Errors are grpc.aio.AioRpcError with the
    server's status and message. A server that wants a token or TLS: the keywords of
    claudebench.client.channel.Security, e.g. `AsyncClient(address, token="...", tls_ca="ca.pem")`.
    """

    def __init__(self, address: str, timeout: float = 10.0, **security: Unpack[Security]) -> None:
        self._channel = aio_channel(address, **security)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(self._channel)
        self.system = system_pb2_grpc.SystemServiceStub(self._channel)
        self.timeout = timeout

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def create_task(
        self,
        text: str,
        priority: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        task_id: str | None = None,
    ) -> tasks_pb2.Task:
        request = create_request(text, priority, metadata, task_id)
        response: tasks_pb2.CreateTaskResponse = await self.tasks.CreateTask(request, timeout=self.timeout)
        return response.task

    async def get_task(self, task_id: str) -> tasks_pb2.Task:
        response: tasks_pb2.GetTaskResponse = await self.tasks.GetTask(
            tasks_pb2.GetTaskRequest(task_id=task_id), timeout=self.timeout
        )
        return response.task

    async def list_tasks(
        self, status: tasks_pb2.TaskStatus | None = None, page_size: int = 100
    ) -> AsyncGenerator[tasks_pb2.Task, None]:
        """Every task (of one status), page after page."""
        token = ""
        while True:
            request = tasks_pb2.ListTasksRequest(page_size=page_size, page_token=token)
            if status is not None:
                request.status = status
            page: tasks_pb2.ListTasksResponse = await self.tasks.ListTasks(request, timeout=self.timeout)
            for task in page.tasks:
                yield task
            token = page.next_page_token
            if not token:
                return

    async def claim(self, worker_id: str, max_tasks: int = 1) -> Sequence[tasks_pb2.Task]:
        response: tasks_pb2.ClaimTaskResponse = await self.tasks.ClaimTask(
            tasks_pb2.ClaimTaskRequest(worker_id=worker_id, max_tasks=max_tasks), timeout=self.timeout
        )
        return response.tasks

    async def complete(self, task_id: str, worker_id: str, result: Any = None) -> tasks_pb2.Task:
        response: tasks_pb2.CompleteTaskResponse = await self.tasks.CompleteTask(
            tasks_pb2.CompleteTaskRequest(task_id=task_id, worker_id=worker_id, result=to_value(result)),
            timeout=self.timeout,
        )
        return response.task

    async def fail(self, task_id: str, worker_id: str, error: str) -> tasks_pb2.Task:
        response: tasks_pb2.CompleteTaskResponse = await self.tasks.CompleteTask(
            tasks_pb2.CompleteTaskRequest(task_id=task_id, worker_id=worker_id, error=error),
            timeout=self.timeout,
        )
        return response.task

    async def release(self, task_id: str, worker_id: str, reason: str = "") -> tasks_pb2.Task:
        response: tasks_pb2.ReleaseTaskResponse = await self.tasks.ReleaseTask(
            tasks_pb2.ReleaseTaskRequest(task_id=task_id, worker_id=worker_id, reason=reason),
            timeout=self.timeout,
        )
        return response.task

    async def cancel(self, task_id: str, reason: str = "") -> tasks_pb2.Task:
        """Cancel a PENDING, SCHEDULED or IN_PROGRESS task (its holder is told)."""
        response: tasks_pb2.CancelTaskResponse = await self.tasks.CancelTask(
            tasks_pb2.CancelTaskRequest(task_id=task_id, reason=reason), timeout=self.timeout
        )
        return response.task

    async def retry(self, task_id: str, reset_attempts: bool = False) -> tasks_pb2.Task:
        """Send a FAILED or CANCELLED task back to PENDING."""
        response: tasks_pb2.RetryTaskResponse = await self.tasks.RetryTask(
            tasks_pb2.RetryTaskRequest(task_id=task_id, reset_attempts=reset_attempts), timeout=self.timeout
        )
        return response.task

    async def report_progress(
        self, task_id: str, worker_id: str, progress: Mapping[str, Any] | None = None
    ) -> tasks_pb2.ReportProgressResponse:
        """Merge `progress` into the held task and extend its lease; `.cancelled`: stop working."""
        response: tasks_pb2.ReportProgressResponse = await self.tasks.ReportProgress(
            tasks_pb2.ReportProgressRequest(
                task_id=task_id, worker_id=worker_id, progress=to_struct(progress)
            ),
            timeout=self.timeout,
        )
        return response

    async def delete_task(self, task_id: str, force: bool = False) -> None:
        """Delete a task; one in progress only with force (its holder sees DELETED)."""
        await self.tasks.DeleteTask(
            tasks_pb2.DeleteTaskRequest(task_id=task_id, force=force), timeout=self.timeout
        )

    async def create_schedule(
        self,
        schedule_id: str,
        template: tasks_pb2.CreateTaskRequest,
        *,
        cron: str | None = None,
        time_zone: str = "",
        every_s: float | None = None,
        paused: bool = False,
    ) -> tasks_pb2.Schedule:
        """A schedule whose every tick creates a task from `template` (e.g. `create_request("report",
        None, None, None)`): `cron` (5 fields, read in `time_zone`, default UTC) or `every_s` seconds."""
        request = tasks_pb2.CreateScheduleRequest(
            schedule_id=schedule_id, template=template, time_zone=time_zone
        )
        if cron is not None:
            request.cron = cron
        if every_s is not None:
            request.interval.FromMilliseconds(round(every_s * 1000))
        if paused:
            request.paused = True
        response: tasks_pb2.CreateScheduleResponse = await self.tasks.CreateSchedule(
            request, timeout=self.timeout
        )
        return response.schedule

    async def get_schedule(self, schedule_id: str) -> tasks_pb2.Schedule:
        response: tasks_pb2.GetScheduleResponse = await self.tasks.GetSchedule(
            tasks_pb2.GetScheduleRequest(schedule_id=schedule_id), timeout=self.timeout
        )
        return response.schedule

    async def list_schedules(self, page_size: int = 100) -> AsyncGenerator[tasks_pb2.Schedule, None]:
        """Every schedule in creation order, page after page."""
        token = ""
        while True:
            request = tasks_pb2.ListSchedulesRequest(page_size=page_size, page_token=token)
            page: tasks_pb2.ListSchedulesResponse = await self.tasks.ListSchedules(
                request, timeout=self.timeout
            )
            for schedule in page.schedules:
                yield schedule
            token = page.next_page_token
            if not token:
                return

    async def pause_schedule(self, schedule_id: str) -> tasks_pb2.Schedule:
        response: tasks_pb2.PauseScheduleResponse = await self.tasks.PauseSchedule(
            tasks_pb2.PauseScheduleRequest(schedule_id=schedule_id), timeout=self.timeout
        )
        return response.schedule

    async def resume_schedule(self, schedule_id: str) -> tasks_pb2.Schedule:
        response: tasks_pb2.ResumeScheduleResponse = await self.tasks.ResumeSchedule(
            tasks_pb2.ResumeScheduleRequest(schedule_id=schedule_id), timeout=self.timeout
        )
        return response.schedule

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule (the tasks it created stay)."""
        await self.tasks.DeleteSchedule(
            tasks_pb2.DeleteScheduleRequest(schedule_id=schedule_id), timeout=self.timeout
        )

    async def register(
        self, instance_id: str, roles: Sequence[str] = (), max_tasks: int = 10, queues: Sequence[str] = ()
    ) -> system_pb2.RegisterResponse:
        """Register (or re-register) an instance serving `queues` (empty: the default queue)."""
        response: system_pb2.RegisterResponse = await self.system.Register(
            system_pb2.RegisterRequest(
                instance_id=instance_id, roles=list(roles), max_tasks=max_tasks, queues=list(queues)
            ),
            timeout=self.timeout,
        )
        return response

    async def heartbeat(self, instance_id: str) -> system_pb2.HeartbeatResponse:
        response: system_pb2.HeartbeatResponse = await self.system.Heartbeat(
            system_pb2.HeartbeatRequest(instance_id=instance_id), timeout=self.timeout
        )
        return response

    async def unregister(self, instance_id: str) -> int:
        response: system_pb2.UnregisterResponse = await self.system.Unregister(
            system_pb2.UnregisterRequest(instance_id=instance_id), timeout=self.timeout
        )
        return response.tasks_released

    async def watch(
        self,
        after_event_id: str = "",
        types: Sequence[tasks_pb2.TaskEventType] = (),
        task_id: str | None = None,
        include_bookmarks: bool = False,
        max_batch: int | None = WATCH_BATCH,
    ) -> AsyncGenerator[tasks_pb2.TaskEvent, None]:
        """Task events, resuming by itself after UNAVAILABLE/RESOURCE_EXHAUSTED from the last id
        received (bookmarks included), so nothing is missed or repeated. OUT_OF_RANGE is raised.
        The server coalesces up to `max_batch` waiting events per message (None: one per message);
        they are yielded one by one either way."""
        cursor = after_event_id
        while True:
            request = tasks_pb2.WatchTasksRequest(after_event_id=cursor, types=list(types))
            if task_id is not None:
                request.task_id = task_id
            if max_batch is not None:
                request.max_batch = max_batch
            try:
                async for response in self.tasks.WatchTasks(request):
                    for event in events_in(response):
                        cursor = event.event_id
                        if include_bookmarks or event.type != tasks_pb2.TASK_EVENT_TYPE_BOOKMARK:
                            yield event
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RESUMABLE:
                    raise
                await asyncio.sleep(0.5)
