"""QueueService: list, read, pause, resume and configure named queues."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2

from claudebench.api import lifecycle_checks as lifecycle
from claudebench.api import validation as check
from claudebench.api.dispatch import Dispatcher
from claudebench.api.guard import guarded
from claudebench.store.lifecycle import RetryPolicy
from claudebench.store.queues import QueueInfo, QueueStore
from claudebench.v1 import queues_pb2 as pb
from claudebench.v1 import queues_pb2_grpc

Ctx = grpc.aio.ServicerContext

# Upper bounds that keep every claim's work bounded (the rate window log holds up to rate_limit
# entries) and every duration meaningful.
MAX_CONCURRENCY_LIMIT = 1_000_000
MAX_RATE_LIMIT = 100_000
MAX_RATE_WINDOW_MS = 24 * 3600 * 1000
MAX_TIMEOUT_MS = lifecycle.MAX_AHEAD_MS


def _millis(value: duration_pb2.Duration, field: str, maximum_ms: int) -> int:
    """A Duration setting in whole ms: 0 (clears it) up to maximum_ms."""
    ms = check.duration_ms(value, field)
    if ms < 0:
        raise check.InvalidArgument(f"{field} must not be negative")
    if ms > maximum_ms:
        raise check.InvalidArgument(f"{field} must be at most {maximum_ms // 1000} s")
    return ms


def queue_message(info: QueueInfo) -> pb.Queue:
    s = info.settings
    queue = pb.Queue(
        name=info.name,
        paused=s.get("paused") == "1",
        concurrency_limit=int(s.get("concurrencyLimit", "0")),
        rate_limit=int(s.get("rateLimit", "0")),
        pending=info.counts.get("pending", 0),
        scheduled=info.counts.get("scheduled", 0),
        in_progress=info.counts.get("in_progress", 0),
        completed=info.counts.get("completed", 0),
        failed=info.counts.get("failed", 0),
        cancelled=info.counts.get("cancelled", 0),
    )
    if "rateWindowMs" in s:
        queue.rate_window.FromMilliseconds(int(s["rateWindowMs"]))
    if "defaultTimeoutMs" in s:
        queue.default_timeout.FromMilliseconds(int(s["defaultTimeoutMs"]))
    if "defaultRetry" in s:
        policy = RetryPolicy.from_json(s["defaultRetry"])
        retry = queue.default_retry
        retry.max_attempts = policy.max_attempts
        retry.initial_backoff.FromMilliseconds(policy.initial_backoff_ms)
        retry.max_backoff.FromMilliseconds(policy.max_backoff_ms)
        retry.backoff_multiplier = policy.multiplier
        retry.jitter = policy.jitter
    return queue


def _settings(request: pb.ConfigureQueueRequest) -> dict[str, str | int]:
    """The config fields a ConfigureQueue request sets (0 clears one)."""
    for unbuilt in ("completed_retention", "failed_retention"):
        if request.HasField(unbuilt):
            raise lifecycle.not_supported(unbuilt, " (retention is per status, not per queue, for now)")
    settings: dict[str, str | int] = {}
    if request.HasField("default_timeout"):
        # 0 clears it (tasks then get the server's default).
        settings["defaultTimeoutMs"] = _millis(request.default_timeout, "default_timeout", MAX_TIMEOUT_MS)
    if request.HasField("concurrency_limit"):
        settings["concurrencyLimit"] = check.in_range(
            request.concurrency_limit, "concurrency_limit", 0, MAX_CONCURRENCY_LIMIT
        )
    if request.HasField("rate_limit"):
        settings["rateLimit"] = check.in_range(request.rate_limit, "rate_limit", 0, MAX_RATE_LIMIT)
    if request.HasField("rate_window"):
        window = _millis(request.rate_window, "rate_window", MAX_RATE_WINDOW_MS)
        if window == 0 and settings.get("rateLimit", 1) != 0:
            raise check.InvalidArgument("rate_window must be longer than 0 (at least 1 ms)")
        settings["rateWindowMs"] = window
    if request.HasField("default_retry"):
        # max_attempts 0 clears it (tasks then get the server's default policy).
        policy = lifecycle.policy_from_proto(request.default_retry, "default_retry")
        settings["defaultRetry"] = policy.to_json() if policy.max_attempts else ""
    if not settings:
        raise check.InvalidArgument(
            "nothing to configure: set concurrency_limit, rate_limit, rate_window, default_timeout "
            "or default_retry"
        )
    return settings


class QueueService(queues_pb2_grpc.QueueServiceServicer):
    """The QueueService of claudebench.v1 (see shared/API.md and the README)."""

    def __init__(self, store: QueueStore, dispatcher: Dispatcher | None = None) -> None:
        self._store = store
        # Waiters (Work streams, long polls) of this replica, woken when a queue may hand out more.
        self._dispatcher = dispatcher

    def _poke(self, queue: str) -> None:
        if self._dispatcher is not None:
            self._dispatcher.poke(queue)

    @guarded
    async def ListQueues(
        self, request: pb.ListQueuesRequest, context: Ctx[pb.ListQueuesRequest, pb.ListQueuesResponse]
    ) -> pb.ListQueuesResponse:
        infos = await self._store.read(await self._store.names())
        return pb.ListQueuesResponse(queues=[queue_message(i) for i in infos])

    @guarded
    async def GetQueue(
        self, request: pb.GetQueueRequest, context: Ctx[pb.GetQueueRequest, pb.GetQueueResponse]
    ) -> pb.GetQueueResponse:
        info = await self._store.get(lifecycle.queue_name(request.queue))
        return pb.GetQueueResponse(queue=queue_message(info))

    @guarded
    async def PauseQueue(
        self, request: pb.PauseQueueRequest, context: Ctx[pb.PauseQueueRequest, pb.PauseQueueResponse]
    ) -> pb.PauseQueueResponse:
        info = await self._store.pause(lifecycle.queue_name(request.queue))
        return pb.PauseQueueResponse(queue=queue_message(info))

    @guarded
    async def ResumeQueue(
        self, request: pb.ResumeQueueRequest, context: Ctx[pb.ResumeQueueRequest, pb.ResumeQueueResponse]
    ) -> pb.ResumeQueueResponse:
        info = await self._store.resume(lifecycle.queue_name(request.queue))
        self._poke(info.name)
        return pb.ResumeQueueResponse(queue=queue_message(info))

    @guarded
    async def ConfigureQueue(
        self,
        request: pb.ConfigureQueueRequest,
        context: Ctx[pb.ConfigureQueueRequest, pb.ConfigureQueueResponse],
    ) -> pb.ConfigureQueueResponse:
        name = lifecycle.queue_name(request.queue)
        info = await self._store.configure(name, _settings(request))
        self._poke(name)  # a cap raised or a rate limit lifted
        return pb.ConfigureQueueResponse(queue=queue_message(info))
