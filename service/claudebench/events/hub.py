"""One blocking XREAD per server process, fanned out to bounded per-subscriber buffers.

Subscribers never hold a Redis connection of their own and never slow the reader: the reader
appends to a subscriber's buffer without waiting, and a subscriber whose buffer is full (in entries
or in bytes) is ended (RESOURCE_EXHAUSTED) with the last event it was sent, so it can resume from
there. Entries are shared by every subscriber, never copied per subscriber.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import grpc
from redis import exceptions as redis_errors

from claudebench.events import stream_ids
from claudebench.events.stream_ids import StreamId
from claudebench.redis_connect import REDIS_FAULTS, RedisClient, connect_reader
from claudebench.tasks_util import cancel_and_wait
from claudebench.v1 import tasks_pb2

log = logging.getLogger(__name__)

Fields = dict[str, str]
# What a subscriber's buffer may hold, in bytes of stream entries (besides its count of entries):
# with maximum-size tasks (~64 KiB an event) about 250 events.
DEFAULT_BUFFER_BYTES = 16 * 1024 * 1024
# Renders an entry (id, fields) as the event sent to clients (api.codec.event_from_entry).
EventRenderer = Callable[[str, Fields], tasks_pb2.TaskEvent]


class Entry:
    """One stream entry, parsed once and shared by every subscriber (so is its message)."""

    __slots__ = ("_event", "_response", "fields", "id", "key", "size")

    def __init__(self, entry_id: str, fields: Fields) -> None:
        self.id = entry_id
        self.key: StreamId = stream_ids.parse(entry_id)
        self.fields = fields
        # Bytes it holds (UTF-8): what it costs a subscriber's buffer.
        self.size = sum(len(k) + len(v.encode()) for k, v in fields.items())
        self._event: tasks_pb2.TaskEvent | None = None
        self._response: tasks_pb2.WatchTasksResponse | None = None

    def event(self, render: EventRenderer) -> tasks_pb2.TaskEvent:
        if self._event is None:
            self._event = render(self.id, self.fields)
        return self._event

    def response(self, render: EventRenderer) -> tasks_pb2.WatchTasksResponse:
        """The one-event message (unbatched subscribers share it)."""
        if self._response is None:
            self._response = tasks_pb2.WatchTasksResponse(event=self.event(render))
        return self._response


EntryFilter = Callable[[Fields], bool]


class Listener(Protocol):
    """Told of every entry the reader reads, synchronously and without a buffer (it must not block):
    the dispatcher's wake-ups (api/dispatch.py)."""

    def entries(self, entries: list[Entry]) -> None: ...

    def gap(self) -> None:
        """Entries may have been missed (a Redis outage that lost or trimmed some)."""


@dataclass(eq=False)
class Subscription:
    """A subscriber's bounded buffer of matching live entries and how far the reader has looked."""

    matches: EntryFilter
    capacity: int
    max_bytes: int = DEFAULT_BUFFER_BYTES
    # The reader's position when the subscription started: live entries come after it.
    live_from: StreamId = stream_ids.ZERO
    # The newest entry the reader examined for this subscriber, matching or not (for bookmarks).
    examined: StreamId = stream_ids.ZERO
    buffer: deque[Entry] = field(default_factory=deque)
    buffered_bytes: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once: why the subscription ended (a status and a message prefix).
    ended: tuple[grpc.StatusCode, str] | None = None

    def pop(self) -> Entry:
        """The oldest buffered entry, taken out of the buffer."""
        entry = self.buffer.popleft()
        self.buffered_bytes -= entry.size
        return entry

    def end(self, code: grpc.StatusCode, message: str) -> None:
        if self.ended is None:
            self.ended = (code, message)
        self.wakeup.set()


class EventHub:
    """Reads the task event stream once for the whole process and feeds every subscription."""

    def __init__(
        self,
        redis_url: str,
        stream_key: str,
        block_ms: int = 5_000,
        batch: int = 1_000,
        redis_timeout_s: float = 5.0,
        query_client: RedisClient | None = None,
    ) -> None:
        # Its own connection: a blocking XREAD must not hold one of the request pool's.
        self._client = connect_reader(redis_url, timeout_s=redis_timeout_s, block_s=block_ms / 1000)
        # For one-off reads while the reader's own connection may be blocked in XREAD.
        self._query_client = query_client or self._client
        self._stream_key = stream_key
        self._block_ms = block_ms
        self._batch = batch
        self._subscriptions: set[Subscription] = set()
        self._listeners: set[Listener] = set()
        self._position: StreamId = stream_ids.ZERO
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Set while anyone is subscribed: with no subscriber the reader stops reading, so writes do
        # not cost this process (and Redis) an XREAD each.
        self._wanted = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        """Start reading after the newest entry that exists now."""
        self._position = await self._last_generated_id()
        self._task = asyncio.create_task(self._read_forever(), name="claudebench-event-hub")

    async def close(self) -> None:
        """End every subscription (UNAVAILABLE: reconnect and resume) and stop reading."""
        self._closing = True
        for subscription in list(self._subscriptions):
            subscription.end(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        self._subscriptions.clear()
        self._wanted.set()  # a paused reader wakes, sees _closing and returns
        if self._task is not None:
            await cancel_and_wait([self._task])
        await self._client.aclose()

    async def subscribe(
        self, matches: EntryFilter, capacity: int, max_bytes: int = DEFAULT_BUFFER_BYTES
    ) -> Subscription:
        if self._closing:
            raise ConnectionAbortedError("the server is shutting down")
        if not self._subscriptions:
            # The reader was paused: it may be behind the stream. Live delivery starts after the
            # newest entry that exists now (older entries it still returns are skipped by position).
            self._position = max(self._position, await self._last_generated_id(self._query_client))
            if self._closing:
                raise ConnectionAbortedError("the server is shutting down")
        subscription = Subscription(matches, capacity, max_bytes, self._position, self._position)
        self._subscriptions.add(subscription)
        self._wanted.set()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        if not self._subscriptions and not self._listeners:
            self._wanted.clear()

    async def listen(self, listener: Listener) -> None:
        """Tell `listener` of every entry appended from now on (until `unlisten`)."""
        if self._closing:
            raise ConnectionAbortedError("the server is shutting down")
        if not self._subscriptions and not self._listeners:
            # A paused reader may be behind: as in subscribe, live entries start after the newest.
            self._position = max(self._position, await self._last_generated_id(self._query_client))
        self._listeners.add(listener)
        self._wanted.set()

    def unlisten(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        if not self._subscriptions and not self._listeners:
            self._wanted.clear()

    async def _last_generated_id(self, client: RedisClient | None = None) -> StreamId:
        try:
            info = await (client or self._client).xinfo_stream(self._stream_key)
        except redis_errors.ResponseError:  # no such key: nothing was ever written
            return stream_ids.ZERO
        return stream_ids.parse(cast(str, info["last-generated-id"]))

    async def _read_forever(self) -> None:
        delay = 0.05
        while not self._closing:
            await self._wanted.wait()
            try:
                reply = await self._client.xread(
                    {self._stream_key: stream_ids.render(self._position)},
                    count=self._batch,
                    block=self._block_ms,
                )
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except REDIS_FAULTS as exc:
                log.warning("event reader: Redis error (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                await self._check_continuity()
                continue
            streams = cast(list[tuple[str, list[tuple[str, Fields]]]], reply or [])
            for _stream, raw_entries in streams:
                self._fan_out([Entry(i, f) for i, f in raw_entries])

    async def _check_continuity(self) -> None:
        """After an outage: if the stream lost entries we had not read (trimmed, or Redis was
        replaced), end every subscription rather than skip events silently."""
        try:
            info = await self._client.xinfo_stream(self._stream_key)
        except redis_errors.ResponseError:
            info = {"last-generated-id": "0-0", "first-entry": None}
        except REDIS_FAULTS:
            return  # still down; checked again on the next failure or read
        last = stream_ids.parse(cast(str, info["last-generated-id"]))
        first = info.get("first-entry")
        first_id = stream_ids.parse(first[0]) if first else None
        if last < self._position or (first_id is not None and first_id > self._position):
            log.warning("event stream lost entries during a Redis outage; ending subscriptions")
            for subscription in list(self._subscriptions):
                subscription.end(
                    grpc.StatusCode.OUT_OF_RANGE,
                    "the event stream lost entries while Redis was unreachable; "
                    "re-list with ListTasks and watch again",
                )
            self._subscriptions.clear()
            if not self._listeners:
                self._wanted.clear()
            self._position = last
            for listener in list(self._listeners):
                listener.gap()

    def _fan_out(self, entries: list[Entry]) -> None:
        if not entries:
            return
        newest = entries[-1].key
        for listener in list(self._listeners):
            listener.entries(entries)
        for subscription in list(self._subscriptions):
            appended = False
            for entry in entries:
                if subscription.matches(entry.fields):
                    if len(subscription.buffer) >= subscription.capacity or (
                        subscription.buffer
                        and subscription.buffered_bytes + entry.size > subscription.max_bytes
                    ):
                        subscription.end(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"the subscriber fell more than {subscription.capacity} events or "
                            f"{subscription.max_bytes} bytes behind",
                        )
                        self.unsubscribe(subscription)
                        break
                    subscription.buffer.append(entry)
                    subscription.buffered_bytes += entry.size
                    appended = True
            subscription.examined = newest
            if appended:  # a subscriber with nothing new sleeps on until its bookmark is due
                subscription.wakeup.set()
        # Never backwards: a subscriber that arrived while this read was in flight may have moved
        # the position past these entries.
        self._position = max(self._position, newest)
