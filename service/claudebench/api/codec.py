"""Conversions between stored task hashes / stream entries and protobuf messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from claudebench.v1 import tasks_pb2

STATUS_TO_PROTO: dict[str, tasks_pb2.TaskStatus] = {
    "pending": tasks_pb2.TASK_STATUS_PENDING,
    "in_progress": tasks_pb2.TASK_STATUS_IN_PROGRESS,
    "completed": tasks_pb2.TASK_STATUS_COMPLETED,
    "failed": tasks_pb2.TASK_STATUS_FAILED,
}
STATUS_FROM_PROTO = {v: k for k, v in STATUS_TO_PROTO.items()}

EVENT_TYPE_TO_PROTO: dict[str, tasks_pb2.TaskEventType] = {
    "created": tasks_pb2.TASK_EVENT_TYPE_CREATED,
    "claimed": tasks_pb2.TASK_EVENT_TYPE_CLAIMED,
    "assigned": tasks_pb2.TASK_EVENT_TYPE_ASSIGNED,
    "updated": tasks_pb2.TASK_EVENT_TYPE_UPDATED,
    "completed": tasks_pb2.TASK_EVENT_TYPE_COMPLETED,
    "failed": tasks_pb2.TASK_EVENT_TYPE_FAILED,
    "released": tasks_pb2.TASK_EVENT_TYPE_RELEASED,
    "reassigned": tasks_pb2.TASK_EVENT_TYPE_REASSIGNED,
    "deleted": tasks_pb2.TASK_EVENT_TYPE_DELETED,
}
EVENT_TYPE_FROM_PROTO = {v: k for k, v in EVENT_TYPE_TO_PROTO.items()}

METADATA_FIELD_PREFIX = "m:"


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def value_to_json(value: struct_pb2.Value) -> str:
    """A protobuf Value as JSON text; a Value with nothing set is null."""
    if value.WhichOneof("kind") is None:
        return "null"
    return compact_json(json_format.MessageToDict(value))


def struct_to_fields(struct: struct_pb2.Struct) -> dict[str, str]:
    """A Struct as {key: JSON-encoded value}, the form stored in the task hash's m: fields."""
    return {key: compact_json(value) for key, value in json_format.MessageToDict(struct).items()}


def _timestamp(target: timestamp_pb2.Timestamp, millis: str | None) -> None:
    if millis:
        target.FromMilliseconds(int(millis))


def task_from_snapshot(snapshot: Mapping[str, str]) -> tasks_pb2.Task:
    """The Task message for a stored task hash."""
    task = tasks_pb2.Task(
        id=snapshot["id"],
        text=snapshot.get("text", ""),
        priority=int(snapshot.get("priority", "0")),
        status=STATUS_TO_PROTO[snapshot["status"]],
        assigned_to=snapshot.get("assignedTo", ""),
        error=snapshot.get("error", ""),
        attempts=int(snapshot.get("attempts", "0")),
    )
    metadata = {
        field[len(METADATA_FIELD_PREFIX) :]: json.loads(value)
        for field, value in snapshot.items()
        if field.startswith(METADATA_FIELD_PREFIX)
    }
    if metadata:
        task.metadata.update(metadata)
    if "result" in snapshot:
        json_format.ParseDict(json.loads(snapshot["result"]), task.result)
    _timestamp(task.create_time, snapshot.get("createdAt"))
    _timestamp(task.update_time, snapshot.get("updatedAt"))
    _timestamp(task.assign_time, snapshot.get("assignedAt"))
    _timestamp(task.complete_time, snapshot.get("completedAt"))
    return task


def event_from_entry(entry_id: str, fields: Mapping[str, str]) -> tasks_pb2.TaskEvent:
    """The TaskEvent for one entry of the task event stream."""
    event = tasks_pb2.TaskEvent(
        event_id=entry_id,
        type=EVENT_TYPE_TO_PROTO[fields["type"]],
        task_id=fields["task_id"],
        instance_id=fields.get("instance_id", ""),
    )
    if "task" in fields:
        event.task.CopyFrom(task_from_snapshot(json.loads(fields["task"])))
    _timestamp(event.time, fields.get("time"))
    return event
