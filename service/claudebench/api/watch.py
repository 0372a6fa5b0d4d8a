"""WatchTasks: history from the stream (for a cursor), then live entries from the event hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import cast

import grpc
from redis import exceptions as redis_errors

from claudebench.api import validation as check
from claudebench.api.budget import fitting, framed_size
from claudebench.api.codec import EVENT_TYPE_FROM_PROTO, event_from_entry
from claudebench.events import stream_ids
from claudebench.events.hub import EventHub, Fields, Subscription
from claudebench.events.stream_ids import StreamId
from claudebench.redis_connect import RedisClient
from claudebench.v1 import tasks_pb2 as pb

Ctx = grpc.aio.ServicerContext[pb.WatchTasksRequest, pb.WatchTasksResponse]
HISTORY_PAGE = 500
MAX_BATCH = 1000


def batch_size(request: pb.WatchTasksRequest) -> int | None:
    """The request's max_batch (validated), or None for one event per message."""
    if not request.HasField("max_batch"):
        return None
    if not 1 <= request.max_batch <= MAX_BATCH:
        raise check.InvalidArgument(
            f"max_batch must be 1..{MAX_BATCH} (or unset for one event per message), not {request.max_batch}"
        )
    return request.max_batch


def batched(events: list[pb.TaskEvent], size: int, budget: int) -> Iterator[pb.WatchTasksResponse]:
    """`events` as messages of up to `size` consecutive events each, and of at most `budget` bytes
    of events (api/budget.py)."""
    start = 0
    while start < len(events):
        taken, _ = fitting(events[start : start + size], budget)
        yield pb.WatchTasksResponse(events=taken)
        start += len(taken)


def entry_filter(request: pb.WatchTasksRequest) -> Callable[[Fields], bool]:
    """The request's filters as one predicate over raw stream fields (validated first)."""
    types: set[str] = set()
    for value in request.types:
        if value not in EVENT_TYPE_FROM_PROTO:
            raise check.InvalidArgument(
                "types may hold only change events (CREATED ... DELETED), not UNSPECIFIED or BOOKMARK"
            )
        types.add(EVENT_TYPE_FROM_PROTO[value])
    task_id = check.identifier(request.task_id, "task_id") if request.HasField("task_id") else None
    instance_id = (
        check.identifier(request.instance_id, "instance_id") if request.HasField("instance_id") else None
    )

    def matches(fields: Fields) -> bool:
        return (
            (not types or fields["type"] in types)
            and (task_id is None or fields["task_id"] == task_id)
            and (instance_id is None or fields.get("instance_id") == instance_id)
        )

    return matches


def parse_cursor(text: str) -> StreamId | None:
    """None for "" (live only), (0, 0) for "0", else the id after which to start."""
    if text == "":
        return None
    try:
        return stream_ids.parse(text)
    except ValueError:
        raise check.InvalidArgument(
            f"after_event_id {text[:40]!r} is not an event id ('<ms>-<seq>'), '0' or empty"
        ) from None


@dataclass
class _Progress:
    position: StreamId


class TaskWatcher:
    """Serves one WatchTasks stream at a time per call of `watch`."""

    def __init__(
        self,
        hub: EventHub,
        client: RedisClient,
        stream_key: str,
        buffer_events: int,
        max_subscribers: int,
        bookmark_interval_s: float,
        reply_budget: int = 4 * 1024 * 1024 - 16 * 1024,
    ) -> None:
        self._reply_budget = reply_budget
        self._hub = hub
        self._client = client
        self._stream_key = stream_key
        self._buffer_events = buffer_events
        self._max_subscribers = max_subscribers
        self._bookmark_interval_s = bookmark_interval_s

    async def watch(
        self, request: pb.WatchTasksRequest, context: Ctx
    ) -> AsyncGenerator[pb.WatchTasksResponse, None]:
        """The stream of one WatchTasks call (an async generator: gRPC sends what it yields)."""
        matches = entry_filter(request)
        cursor = parse_cursor(request.after_event_id)
        batch = batch_size(request)
        if self._hub.subscriber_count >= self._max_subscribers:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server already serves {self._max_subscribers} WatchTasks streams (the "
                "max_watch_subscribers limit); retry later or on another replica",
            )
        try:
            subscription = await self._hub.subscribe(matches, self._buffer_events)
        except ConnectionAbortedError:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; reconnect")
        try:
            position = subscription.live_from
            if cursor is not None:
                progress = _Progress(cursor)
                replay = self._replay(context, matches, progress, subscription.live_from, batch)
                async for response in replay:
                    yield response
                position = progress.position
            async for response in self._follow(context, subscription, position, batch):
                yield response
        finally:
            self._hub.unsubscribe(subscription)

    async def _replay(
        self,
        context: Ctx,
        matches: Callable[[Fields], bool],
        progress: _Progress,
        until: StreamId,
        batch: int | None,
    ) -> AsyncGenerator[pb.WatchTasksResponse, None]:
        """The stored entries after the cursor up to `until` (where live delivery starts); leaves
        in `progress` the position the live part continues from."""
        position = progress.position
        checked_once = False
        while position < until:
            page = cast(
                list[tuple[str, Fields]],
                await self._client.xrange(
                    self._stream_key,
                    min="(" + stream_ids.render(position),
                    max=stream_ids.render(until),
                    count=HISTORY_PAGE,
                ),
            )
            if position != stream_ids.ZERO:  # "0" asks for whatever is retained
                # Checked after each read: trimming only removes the oldest entries, so if the
                # oldest retained entry is still at or before `position` now, nothing after it was
                # gone when the page was read (a slow replay racing the trimming is caught too).
                await self._ensure_retained(context, position)
                checked_once = True
            if not page:
                break
            events = [event_from_entry(i, fields) for i, fields in page if matches(fields)]
            if batch is None:
                for event in events:
                    yield pb.WatchTasksResponse(event=event)
            else:
                for response in batched(events, batch, self._reply_budget):
                    yield response
            position = stream_ids.parse(page[-1][0])
        if not checked_once and position != stream_ids.ZERO:
            await self._ensure_retained(context, position)
        progress.position = max(position, until)

    async def _ensure_retained(self, context: Ctx, cursor: StreamId) -> None:
        try:
            info = await self._client.xinfo_stream(self._stream_key)
        except redis_errors.ResponseError:  # no such key: the stream is empty and was never written
            info = {"last-generated-id": "0-0", "first-entry": None}
        first = info.get("first-entry")
        last = stream_ids.parse(cast(str, info["last-generated-id"]))
        newest = stream_ids.render(last)
        if first and stream_ids.parse(first[0]) > cursor:
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"after_event_id {stream_ids.render(cursor)} is older than the oldest retained event "
                f"({first[0]}); re-list with ListTasks and watch from after_event_id={newest}",
            )
        if cursor > last:
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"after_event_id {stream_ids.render(cursor)} is newer than the newest event ({newest}): "
                "the stream was reset; re-list with ListTasks and watch from after_event_id=" + newest,
            )

    async def _follow(
        self, context: Ctx, subscription: Subscription, position: StreamId, batch: int | None
    ) -> AsyncGenerator[pb.WatchTasksResponse, None]:
        """Live entries as the hub buffers them; a bookmark when the filter matched nothing.
        With `batch`, the entries waiting when the subscriber is ready go out together: a
        subscriber that keeps up gets one event per message, one that lags gets fewer, larger
        messages instead of falling further behind."""
        # `position`: the newest id the client has been sent (an event or a bookmark), or its cursor.
        while True:
            while subscription.buffer:
                if batch is None:
                    entry = subscription.pop()
                    if entry.key <= position:
                        continue  # already sent from history
                    position = entry.key
                    yield entry.response(event_from_entry)
                    continue
                events: list[pb.TaskEvent] = []
                used = 0  # bytes of the batch: it ends before the event that would pass the budget
                while subscription.buffer and len(events) < batch:
                    entry = subscription.buffer[0]
                    if entry.key <= position:  # already sent from history
                        subscription.pop()
                        continue
                    event = entry.event(event_from_entry)
                    size = framed_size(event)
                    if events and used + size > self._reply_budget:
                        break
                    subscription.pop()
                    position = entry.key
                    events.append(event)
                    used += size
                if events:
                    yield pb.WatchTasksResponse(events=events)
            if subscription.ended is not None:
                code, reason = subscription.ended
                await context.abort(
                    code, f"{reason}; resume with after_event_id={stream_ids.render(position)}"
                )
            subscription.wakeup.clear()
            try:
                # asyncio.timeout, not wait_for: wait_for runs the wait as a task of its own, one
                # more task step for every event delivered to every subscriber.
                async with asyncio.timeout(self._bookmark_interval_s):
                    await subscription.wakeup.wait()
            except TimeoutError:
                if subscription.examined > position and not subscription.buffer:
                    position = subscription.examined
                    bookmark = pb.TaskEvent(
                        event_id=stream_ids.render(position), type=pb.TASK_EVENT_TYPE_BOOKMARK
                    )
                    if batch is None:
                        yield pb.WatchTasksResponse(event=bookmark)
                    else:
                        yield pb.WatchTasksResponse(events=[bookmark])
