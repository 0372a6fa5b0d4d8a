"""`claudebench watch`: print task events as they come, resuming by itself after a disconnect."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

import grpc
from google.protobuf import json_format

from claudebench.api.codec import EVENT_TYPE_TO_PROTO
from claudebench.client.channel import Security, sync_channel
from claudebench.client.events import WATCH_BATCH, events_in
from claudebench.v1 import tasks_pb2 as pb
from claudebench.v1 import tasks_pb2_grpc

# Statuses after which watching again from the last id received is the documented remedy.
_RESUMABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


def event_types(names: str | None) -> list[pb.TaskEventType]:
    """'created,completed' -> the enum values; ValueError naming the unknown ones."""
    if not names:
        return []
    wanted = [n.strip().lower() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in EVENT_TYPE_TO_PROTO]
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPE_TO_PROTO)}")
    return [EVENT_TYPE_TO_PROTO[n] for n in wanted]


def format_event(event: pb.TaskEvent) -> str:
    """One line a person can read."""
    kind = pb.TaskEventType.Name(event.type).removeprefix("TASK_EVENT_TYPE_").lower()
    if event.type == pb.TASK_EVENT_TYPE_BOOKMARK:
        return f"{event.event_id:<20} {kind}"
    parts = [f"{event.event_id:<20}", f"{kind:<10}", event.task_id]
    if event.HasField("task"):
        status = pb.TaskStatus.Name(event.task.status).removeprefix("TASK_STATUS_").lower()
        parts.append(f"{status:<11} p{event.task.priority:<3}")
    if event.instance_id:
        parts.append(f"by {event.instance_id}")
    if event.HasField("task"):
        parts.append(repr(event.task.text[:60]))
    return "  ".join(parts)


def watch(
    server: str,
    after: str,
    types: Sequence[pb.TaskEventType],
    task_id: str | None,
    instance_id: str | None,
    as_json: bool,
    out: TextIO = sys.stdout,
    max_events: int | None = None,
    security: Security | None = None,
) -> int:
    """Stream events to `out` until interrupted (or max_events); returns the exit code."""
    cursor = after
    printed = 0
    with sync_channel(server, options=(), **(security or {})) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        while True:
            request = pb.WatchTasksRequest(after_event_id=cursor, types=types, max_batch=WATCH_BATCH)
            if task_id is not None:
                request.task_id = task_id
            if instance_id is not None:
                request.instance_id = instance_id
            try:
                for response in stub.WatchTasks(request):
                    for event in events_in(response):
                        cursor = event.event_id
                        if as_json:
                            line = json_format.MessageToJson(event, indent=None, sort_keys=True)
                        else:
                            line = format_event(event)
                        print(line, file=out, flush=True)
                        printed += 1
                        if max_events is not None and printed >= max_events:
                            return 0
                return 0
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details()
                if code in _RESUMABLE:
                    print(f"watch: {code.name}: {details}; resuming", file=sys.stderr)
                    time.sleep(1.0)
                    continue
                print(f"watch: {code.name}: {details}", file=sys.stderr)
                return 1
