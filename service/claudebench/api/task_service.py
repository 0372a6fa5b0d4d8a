"""TaskService: each RPC validates its request, runs one store operation and maps the result."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator

import grpc

from claudebench.api import lifecycle_checks as lifecycle
from claudebench.api import validation as check
from claudebench.api.budget import framed_size
from claudebench.api.codec import STATUS_FROM_PROTO, task_from_snapshot, value_to_json
from claudebench.api.dispatch import Dispatcher
from claudebench.api.guard import guarded, guarded_stream
from claudebench.api.lifecycle_service import LifecycleRpcs
from claudebench.api.watch import TaskWatcher
from claudebench.api.work import Answer, LongPoll, serve, wait_seconds
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import Completion, NewTask, TaskStore
from claudebench.v1 import tasks_pb2 as pb

Ctx = grpc.aio.ServicerContext


MAX_BATCH = 1000


def _new_task(request: pb.CreateTaskRequest, where: str = "") -> NewTask:
    """A validated CreateTaskRequest (`where` prefixes field names in messages of batches)."""
    try:
        lifecycle.refuse_unsupported_create(request)
        when = lifecycle.start(request)
        return NewTask(
            queue=lifecycle.create_queue(request),
            text=check.task_text(request.text),
            priority=(
                check.priority(request.priority) if request.HasField("priority") else check.DEFAULT_PRIORITY
            ),
            metadata=_fair_metadata(check.metadata(request.metadata)),
            task_id=check.identifier(request.task_id, "task_id") if request.HasField("task_id") else None,
            run_at_ms=when.run_at_ms,
            delay_ms=when.delay_ms,
            timeout_ms=lifecycle.timeout_ms(request),
            retry=lifecycle.retry_policy(request),
            idempotency_key=lifecycle.idempotency_key(request),
        )
    except check.InvalidArgument as exc:
        raise check.InvalidArgument(f"{where}{exc}") from None


# The metadata key whose value picks a task's turn in fair dispatch.
FAIRNESS_KEY = "fairness_key"
MAX_FAIRNESS_KEY_CHARS = 256


def _fair_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Task metadata, with fairness_key (when present) checked: a string of 1..256 characters."""
    if FAIRNESS_KEY in metadata:
        value = json.loads(metadata[FAIRNESS_KEY])
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_FAIRNESS_KEY_CHARS:
            raise check.InvalidArgument(
                f"metadata.{FAIRNESS_KEY} must be a string of 1 to {MAX_FAIRNESS_KEY_CHARS} characters"
            )
    return metadata


def _completion(request: pb.CompleteTaskRequest, where: str = "") -> Completion:
    try:
        task_id = check.identifier(request.task_id, "task_id")
        worker_id = check.identifier(request.worker_id, "worker_id")
        outcome = request.WhichOneof("outcome")
        if outcome == "result":
            check.json_payload(request.result, "result", check.MAX_RESULT_BYTES)
            # Keys sorted: a retry must store the same text to be recognised as the same outcome.
            text = value_to_json(request.result, sort_keys=True)
            return Completion(task_id, worker_id, "result", check.result_json(text))
        if outcome == "error":
            return Completion(
                task_id, worker_id, "error", check.error_message(request.error), request.no_retry
            )
        raise check.InvalidArgument("set either result (the task succeeded) or error (it failed)")
    except check.InvalidArgument as exc:
        raise check.InvalidArgument(f"{where}{exc}") from None


def _status(value: pb.TaskStatus, field: str = "status") -> str:
    if value not in STATUS_FROM_PROTO:
        raise check.InvalidArgument(
            f"{field} must be one of PENDING, IN_PROGRESS, COMPLETED, FAILED, SCHEDULED, CANCELLED"
        )
    return STATUS_FROM_PROTO[value]


class TaskService(LifecycleRpcs):
    """The TaskService of claudebench.v1 (see shared/API.md and the README)."""

    def __init__(
        self, store: TaskStore, watcher: TaskWatcher, instances: InstanceStore, dispatcher: Dispatcher
    ) -> None:
        self._store = store
        self._watcher = watcher
        self._instances = instances
        self._dispatcher = dispatcher
        self._long_poll = LongPoll(store, instances, dispatcher)
        # What the Work stream answers its requests with: the unary RPCs' own logic.
        self._answers: dict[str, Answer] = {
            "complete": self._complete,
            "release": self._release,
            "progress": self._progress,
        }

    @guarded
    async def CreateTask(
        self,
        request: pb.CreateTaskRequest,
        context: Ctx[pb.CreateTaskRequest, pb.CreateTaskResponse],
    ) -> pb.CreateTaskResponse:
        new = _new_task(request)
        snapshot = await self._store.create(
            new.text,
            new.priority,
            new.metadata,
            new.task_id,
            new.queue,
            new.run_at_ms,
            new.delay_ms,
            new.timeout_ms,
            new.retry,
            new.idempotency_key,
        )
        return pb.CreateTaskResponse(task=task_from_snapshot(snapshot))

    @guarded
    async def CreateTasks(
        self, request: pb.CreateTasksRequest, context: Ctx[pb.CreateTasksRequest, pb.CreateTasksResponse]
    ) -> pb.CreateTasksResponse:
        check.in_range(len(request.tasks), "the number of tasks", 1, MAX_BATCH)
        items = [_new_task(item, f"tasks[{i}].") for i, item in enumerate(request.tasks)]
        for i, item in enumerate(request.tasks):
            if item.HasField("idempotency_key"):
                raise lifecycle.not_supported(
                    f"tasks[{i}].idempotency_key in CreateTasks", " (CreateTask honours it)"
                )
        chosen = [item.task_id for item in items if item.task_id]
        if len(set(chosen)) != len(chosen):
            raise check.InvalidArgument("task ids in one batch must differ")
        # Each created task is its request plus an id, a status, times and framing (< 256 bytes).
        reply_bound = sum(item.ByteSize() + 256 for item in request.tasks)
        if reply_bound > self._store.reply_budget:
            raise check.InvalidArgument(
                f"the created tasks could take up to {reply_bound} bytes in the reply, more than the "
                f"{self._store.reply_budget} a reply may carry (the message limit, "
                "CLAUDEBENCH_MAX_MESSAGE_BYTES): split the batch"
            )
        snapshots = await self._store.create_many(items)
        return pb.CreateTasksResponse(tasks=[task_from_snapshot(s) for s in snapshots])

    @guarded
    async def GetTask(
        self, request: pb.GetTaskRequest, context: Ctx[pb.GetTaskRequest, pb.GetTaskResponse]
    ) -> pb.GetTaskResponse:
        snapshot = await self._store.get(check.identifier(request.task_id, "task_id"))
        return pb.GetTaskResponse(task=task_from_snapshot(snapshot))

    @guarded
    async def ListTasks(
        self, request: pb.ListTasksRequest, context: Ctx[pb.ListTasksRequest, pb.ListTasksResponse]
    ) -> pb.ListTasksResponse:
        status = _status(request.status) if request.HasField("status") else None
        queue = lifecycle.queue_name(request.queue) if request.HasField("queue") else None
        assigned_to = (
            check.identifier(request.assigned_to, "assigned_to") if request.HasField("assigned_to") else None
        )
        if queue is not None and (status is not None or assigned_to is not None):
            raise lifecycle.not_supported("queue combined with status or assigned_to")
        if assigned_to is not None and status not in (None, "in_progress"):
            raise check.InvalidArgument(
                "assigned_to lists the tasks an instance holds, which are all IN_PROGRESS; "
                "drop status or set it to IN_PROGRESS"
            )
        page_size = check.bounded_count(
            request.page_size, "page_size", check.DEFAULT_PAGE_SIZE, check.MAX_PAGE_SIZE
        )
        filter_key = f"{status or ''}|{assigned_to or ''}" + (f"|{queue}" if queue is not None else "")
        after = check.decode_page_token(request.page_token, filter_key)
        built: dict[str, pb.Task] = {}

        def measure(snapshot: dict[str, str]) -> int:
            task = built[snapshot["id"]] = task_from_snapshot(snapshot)
            return framed_size(task)

        page = await self._store.list_page(status, assigned_to, page_size, after, queue, measure)
        return pb.ListTasksResponse(
            tasks=[built[s["id"]] for s in page.tasks],
            next_page_token=(
                check.encode_page_token(page.next_after_seq, filter_key)
                if page.next_after_seq is not None
                else ""
            ),
            total_size=page.total,
        )

    @guarded
    async def ClaimTask(
        self, request: pb.ClaimTaskRequest, context: Ctx[pb.ClaimTaskRequest, pb.ClaimTaskResponse]
    ) -> pb.ClaimTaskResponse:
        worker_id = check.identifier(request.worker_id, "worker_id")
        max_tasks = check.bounded_count(request.max_tasks, "max_tasks", 1, check.MAX_CLAIM)
        queues = lifecycle.queues(list(request.queues))
        wait_s = wait_seconds(request)
        if wait_s > 0:
            claim = await self._long_poll.claim(worker_id, max_tasks, queues, wait_s, context)
        else:
            claim = await self._store.claim_from(worker_id, max_tasks, queues)
        response = pb.ClaimTaskResponse(tasks=[task_from_snapshot(s) for s in claim.tasks])
        if claim.open_at_ms:
            response.rate_limit_reset_time.FromMilliseconds(claim.open_at_ms)
        return response

    @guarded
    async def AssignTask(
        self,
        request: pb.AssignTaskRequest,
        context: Ctx[pb.AssignTaskRequest, pb.AssignTaskResponse],
    ) -> pb.AssignTaskResponse:
        snapshot = await self._store.assign(
            check.identifier(request.task_id, "task_id"),
            check.identifier(request.instance_id, "instance_id"),
        )
        return pb.AssignTaskResponse(task=task_from_snapshot(snapshot))

    @guarded
    async def UpdateTask(
        self,
        request: pb.UpdateTaskRequest,
        context: Ctx[pb.UpdateTaskRequest, pb.UpdateTaskResponse],
    ) -> pb.UpdateTaskResponse:
        task_id = check.identifier(request.task_id, "task_id")
        text = check.task_text(request.text) if request.HasField("text") else None
        priority = check.priority(request.priority) if request.HasField("priority") else None
        status = _status(request.status) if request.HasField("status") else None
        metadata = check.metadata(request.metadata)
        if text is None and priority is None and status is None and not metadata:
            raise check.InvalidArgument("nothing to update: set text, priority, status or metadata")
        snapshot = await self._store.update(task_id, text, priority, status, metadata)
        return pb.UpdateTaskResponse(task=task_from_snapshot(snapshot))

    @guarded
    async def CompleteTask(
        self,
        request: pb.CompleteTaskRequest,
        context: Ctx[pb.CompleteTaskRequest, pb.CompleteTaskResponse],
    ) -> pb.CompleteTaskResponse:
        return pb.CompleteTaskResponse(task=await self._complete(request))

    async def _complete(self, request: pb.CompleteTaskRequest) -> pb.Task:
        c = _completion(request)
        snapshot = await self._store.complete(c.task_id, c.worker_id, c.outcome, c.value, c.no_retry)
        return task_from_snapshot(snapshot)

    @guarded
    async def CompleteTasks(
        self,
        request: pb.CompleteTasksRequest,
        context: Ctx[pb.CompleteTasksRequest, pb.CompleteTasksResponse],
    ) -> pb.CompleteTasksResponse:
        check.in_range(len(request.completions), "the number of completions", 1, MAX_BATCH)
        items = [_completion(item, f"completions[{i}].") for i, item in enumerate(request.completions)]
        if len({item.task_id for item in items}) != len(items):
            raise check.InvalidArgument("a batch may complete each task only once")
        snapshots = await self._store.complete_many(items)
        return pb.CompleteTasksResponse(tasks=[task_from_snapshot(s) for s in snapshots])

    @guarded
    async def ReleaseTask(
        self,
        request: pb.ReleaseTaskRequest,
        context: Ctx[pb.ReleaseTaskRequest, pb.ReleaseTaskResponse],
    ) -> pb.ReleaseTaskResponse:
        return pb.ReleaseTaskResponse(task=await self._release(request))

    async def _progress(self, request: pb.ReportProgressRequest) -> pb.Task:
        return (await self._report_progress(request)).task

    async def _release(self, request: pb.ReleaseTaskRequest) -> pb.Task:
        snapshot = await self._store.release(
            check.identifier(request.task_id, "task_id"),
            check.identifier(request.worker_id, "worker_id"),
            check.reason(request.reason),
        )
        return task_from_snapshot(snapshot)

    @guarded
    async def DeleteTask(
        self,
        request: pb.DeleteTaskRequest,
        context: Ctx[pb.DeleteTaskRequest, pb.DeleteTaskResponse],
    ) -> pb.DeleteTaskResponse:
        await self._store.delete(check.identifier(request.task_id, "task_id"), request.force)
        return pb.DeleteTaskResponse()

    @guarded_stream
    async def WatchTasks(
        self, request: pb.WatchTasksRequest, context: Ctx[pb.WatchTasksRequest, pb.WatchTasksResponse]
    ) -> AsyncGenerator[pb.WatchTasksResponse, None]:
        async for response in self._watcher.watch(request, context):
            yield response

    async def Work(
        self, request_iterator: AsyncIterator[pb.WorkRequest], context: Ctx[pb.WorkRequest, pb.WorkResponse]
    ) -> AsyncGenerator[pb.WorkResponse, None]:
        responses = serve(
            request_iterator, context, self._store, self._instances, self._dispatcher, self._answers
        )
        async for response in responses:
            yield response
