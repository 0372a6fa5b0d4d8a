"""GET /api/v1/events: the WatchTasks stream as Server-Sent Events.

The same servicer method as a gRPC WatchTasks call runs underneath (same event hub, same filters,
same per-subscriber buffer bound, same subscriber limit): each TaskEvent becomes one SSE event whose
`id:` is its stream entry id, so a client that reconnects with `Last-Event-ID` (or `?after=`)
resumes strictly after it. Bookmarks become `event: bookmark` with an id too, so a filtered stream's
cursor keeps moving. A cursor older than what is retained (OUT_OF_RANGE) becomes `event: reload`:
the client must re-read the state and watch from the newest event. Any other end of the stream
(slow subscriber, shutdown) becomes `event: error` and the client reconnects with its last id.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any, cast

import grpc
from aiohttp import web
from google.protobuf import json_format
from multidict import MultiDict

from claudebench.api.http.rpc import BadRequest, HttpCallContext, Rpc, RpcAbort, build_request, error_body
from claudebench.api.validation import InvalidArgument
from claudebench.api.watch import entry_filter, parse_cursor
from claudebench.v1 import tasks_pb2

log = logging.getLogger(__name__)

# How long the browser waits before reconnecting (EventSource honours it; our page too).
RETRY_MS = 1000


class EncodedEvents:
    """Each event's SSE bytes, encoded once for all the streams of one server (one event stream):
    with 100 subscribers an event is delivered 100 times but turned into JSON once. Keyed by the
    stream entry id; the newest `size` are kept."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._encoded: OrderedDict[str, bytes] = OrderedDict()

    def task(self, event: tasks_pb2.TaskEvent) -> bytes:
        key = event.event_id
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = _sse("task", json_format.MessageToDict(event), key)
            self._encoded[key] = encoded
            if len(self._encoded) > self._size:
                self._encoded.popitem(last=False)
        return encoded


def _sse(event: str, data: object, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def watch_request(request: web.Request) -> tasks_pb2.WatchTasksRequest:
    """The WatchTasksRequest of an SSE request, validated as WatchTasks validates it."""
    query = MultiDict((k, v) for k, v in request.query.items() if k != "after")
    watch = build_request(tasks_pb2.WatchTasksRequest, {}, query, None)
    assert isinstance(watch, tasks_pb2.WatchTasksRequest)
    watch.after_event_id = request.headers.get("Last-Event-ID") or request.query.get("after", "")
    entry_filter(watch)
    parse_cursor(watch.after_event_id)
    return watch


async def stream_events(request: web.Request, watch_rpc: Rpc, encoded: EncodedEvents) -> web.StreamResponse:
    """Serve one SSE stream until the client leaves or the stream ends."""
    try:
        watch = watch_request(request)
    except (BadRequest, InvalidArgument) as exc:
        code = grpc.StatusCode.INVALID_ARGUMENT
        return web.json_response(error_body(code, str(exc)), status=400)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # a reverse proxy must not buffer the stream
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
    handler = cast(Any, watch_rpc.servicer).WatchTasks
    try:
        async for reply in handler(watch, HttpCallContext()):
            event = reply.event
            if event.type == tasks_pb2.TASK_EVENT_TYPE_BOOKMARK:
                await response.write(_sse("bookmark", {}, event.event_id))
            else:
                await response.write(encoded.task(event))
    except RpcAbort as abort:
        kind = "reload" if abort.code == grpc.StatusCode.OUT_OF_RANGE else "error"
        await response.write(_sse(kind, {"status": abort.code.name, "message": abort.details}))
    except ConnectionResetError:
        pass  # the client left
    return response
