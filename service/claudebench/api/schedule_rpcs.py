"""The schedule RPCs of TaskService (periodic tasks), and the creation of each tick's task.

TaskServiceWithSchedules is the TaskService the server registers: api/task_service.py keeps the
task RPCs, this module adds CreateSchedule, GetSchedule, DeleteSchedule, ListSchedules,
PauseSchedule and ResumeSchedule. A schedule's template is checked at CreateSchedule exactly as
CreateTask checks a request (so what CreateTask refuses, a template may not hold either), stored
as protobuf JSON, and each tick creates its task by calling CreateTask in-process with the id
`{schedule_id}@{tick epoch ms}`: the same validation, store call and script as a client's create.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, timestamp_pb2

from claudebench.api import validation as check
from claudebench.api.codec import compact_json
from claudebench.api.guard import guarded
from claudebench.api.http.rpc import HttpCallContext, RpcAbort
from claudebench.api.task_service import TaskService, _new_task
from claudebench.scripts.results import ResultCode
from claudebench.store.clock import wall_clock_ms
from claudebench.store.errors import DomainError
from claudebench.store.schedule_times import BadSpec, Spec, check_cron
from claudebench.store.schedules import Schedule, ScheduleStore, TickReport
from claudebench.v1 import tasks_pb2 as pb

Ctx = grpc.aio.ServicerContext

# A tick's task id is `{schedule_id}@{13-digit epoch ms}`: within the 128 characters of any id.
MAX_SCHEDULE_ID_CHARS = 100
MIN_INTERVAL_MS = 1000
MAX_INTERVAL_MS = 366 * 24 * 3600 * 1000
PAGE_FILTER = "schedules"


def _spec(request: pb.CreateScheduleRequest) -> Spec:
    kind = request.WhichOneof("spec")
    if kind is None:
        raise check.InvalidArgument("set either cron (a 5-field cron expression) or interval (a Duration)")
    if kind == "cron":
        time_zone = request.time_zone or "UTC"
        try:
            check_cron(request.cron, time_zone, wall_clock_ms())
        except BadSpec as exc:
            raise check.InvalidArgument(str(exc)) from None
        return Spec(cron=request.cron, time_zone=time_zone)
    if request.time_zone:
        raise check.InvalidArgument("time_zone applies to cron schedules only; leave it unset with interval")
    interval_ms = check.duration_ms(request.interval, "interval")
    if interval_ms <= 0:
        raise check.InvalidArgument(f"interval must be positive, got {interval_ms} ms")
    if interval_ms < MIN_INTERVAL_MS:
        raise check.InvalidArgument(f"interval must be at least 1 second, got {interval_ms} ms")
    if interval_ms > MAX_INTERVAL_MS:
        raise check.InvalidArgument(f"interval must be at most 366 days, got {interval_ms} ms")
    return Spec(interval_ms=interval_ms)


def _template(request: pb.CreateScheduleRequest) -> str:
    """The template, checked as CreateTask checks a request, as protobuf JSON."""
    if not request.HasField("template"):
        raise check.InvalidArgument("template is required: the task each tick creates (text at least)")
    template = request.template
    if template.HasField("task_id"):
        raise check.InvalidArgument(
            "template.task_id must be unset: each tick's task id is {schedule_id}@{tick epoch ms}"
        )
    if template.HasField("run_at"):
        raise check.InvalidArgument(
            "template.run_at is one fixed time, the same for every tick; use template.delay"
        )
    if template.HasField("idempotency_key"):
        raise check.InvalidArgument(
            "template.idempotency_key would make every tick return the first tick's task; leave it unset "
            "(a tick's task id already makes it idempotent)"
        )
    _new_task(template, "template.")
    return compact_json(json_format.MessageToDict(template, preserving_proto_field_name=True))


def _timestamp(millis: int | None) -> timestamp_pb2.Timestamp | None:
    if millis is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(millis)
    return stamp


def schedule_message(schedule: Schedule) -> pb.Schedule:
    """The Schedule message for a stored schedule."""
    message = pb.Schedule(
        schedule_id=schedule.schedule_id,
        time_zone=schedule.spec.time_zone,
        template=json_format.Parse(schedule.template, pb.CreateTaskRequest(), ignore_unknown_fields=True),
        paused=schedule.paused,
        next_run_time=_timestamp(schedule.next_run_ms),
        last_run_time=_timestamp(schedule.last_run_ms),
        last_task_id=schedule.last_task_id,
    )
    if schedule.spec.cron is not None:
        message.cron = schedule.spec.cron
    else:
        assert schedule.spec.interval_ms is not None
        message.interval.FromMilliseconds(schedule.spec.interval_ms)
    return message


def _schedule_id(value: str) -> str:
    check.identifier(value, "schedule_id")
    if len(value) > MAX_SCHEDULE_ID_CHARS:
        raise check.InvalidArgument(
            f"schedule_id is {len(value)} characters long; the limit is {MAX_SCHEDULE_ID_CHARS}"
        )
    return value


class TaskServiceWithSchedules(TaskService):
    """TaskService with the schedule RPCs (the servicer the server registers)."""

    def __init__(self, *args: Any, schedules: ScheduleStore, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schedules = schedules

    @guarded
    async def CreateSchedule(
        self,
        request: pb.CreateScheduleRequest,
        context: Ctx[pb.CreateScheduleRequest, pb.CreateScheduleResponse],
    ) -> pb.CreateScheduleResponse:
        schedule_id = _schedule_id(request.schedule_id)
        spec = _spec(request)
        template = _template(request)
        paused = request.HasField("paused") and request.paused
        schedule = await self._schedules.create(schedule_id, spec, template, paused)
        return pb.CreateScheduleResponse(schedule=schedule_message(schedule))

    @guarded
    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Ctx[pb.GetScheduleRequest, pb.GetScheduleResponse]
    ) -> pb.GetScheduleResponse:
        schedule = await self._schedules.get(_schedule_id(request.schedule_id))
        return pb.GetScheduleResponse(schedule=schedule_message(schedule))

    @guarded
    async def DeleteSchedule(
        self,
        request: pb.DeleteScheduleRequest,
        context: Ctx[pb.DeleteScheduleRequest, pb.DeleteScheduleResponse],
    ) -> pb.DeleteScheduleResponse:
        await self._schedules.delete(_schedule_id(request.schedule_id))
        return pb.DeleteScheduleResponse()

    @guarded
    async def ListSchedules(
        self,
        request: pb.ListSchedulesRequest,
        context: Ctx[pb.ListSchedulesRequest, pb.ListSchedulesResponse],
    ) -> pb.ListSchedulesResponse:
        page_size = check.bounded_count(
            request.page_size, "page_size", check.DEFAULT_PAGE_SIZE, check.MAX_PAGE_SIZE
        )
        after = check.decode_page_token(request.page_token, PAGE_FILTER)
        page = await self._schedules.list_page(page_size, after)
        return pb.ListSchedulesResponse(
            schedules=[schedule_message(s) for s in page.schedules],
            next_page_token=(
                check.encode_page_token(page.next_after_seq, PAGE_FILTER)
                if page.next_after_seq is not None
                else ""
            ),
        )

    @guarded
    async def PauseSchedule(
        self,
        request: pb.PauseScheduleRequest,
        context: Ctx[pb.PauseScheduleRequest, pb.PauseScheduleResponse],
    ) -> pb.PauseScheduleResponse:
        schedule = await self._schedules.pause(_schedule_id(request.schedule_id))
        return pb.PauseScheduleResponse(schedule=schedule_message(schedule))

    @guarded
    async def ResumeSchedule(
        self,
        request: pb.ResumeScheduleRequest,
        context: Ctx[pb.ResumeScheduleRequest, pb.ResumeScheduleResponse],
    ) -> pb.ResumeScheduleResponse:
        schedule = await self._schedules.resume(_schedule_id(request.schedule_id))
        return pb.ResumeScheduleResponse(schedule=schedule_message(schedule))

    async def create_tick_task(self, schedule: Schedule, task_id: str) -> None:
        """Create a tick's task through CreateTask itself (in-process), with the tick's id."""
        request = json_format.Parse(schedule.template, pb.CreateTaskRequest(), ignore_unknown_fields=True)
        request.task_id = task_id
        try:
            await self.CreateTask(request, HttpCallContext())  # type: ignore[arg-type]
        except RpcAbort as exc:
            if exc.code is grpc.StatusCode.ALREADY_EXISTS:
                raise DomainError(ResultCode.ALREADY_EXISTS, exc.details) from None
            if exc.code is grpc.StatusCode.INVALID_ARGUMENT:
                raise ValueError(exc.details) from None
            raise RuntimeError(f"creating task {task_id}: {exc.code.name}: {exc.details}") from None

    async def fire_due_schedules(self, now_ms: int) -> TickReport:
        """The scheduler's `schedules` job: every tick due at now_ms creates its task."""
        return await self._schedules.tick(now_ms, self.create_tick_task)
