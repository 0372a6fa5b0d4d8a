"""Conversions between stored task hashes / stream entries and protobuf messages."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from claudebench.v1 import tasks_pb2

STATUS_TO_PROTO: dict[str, tasks_pb2.TaskStatus] = {
    "pending": tasks_pb2.TASK_STATUS_PENDING,
    "in_progress": tasks_pb2.TASK_STATUS_IN_PROGRESS,
    "completed": tasks_pb2.TASK_STATUS_COMPLETED,
    "failed": tasks_pb2.TASK_STATUS_FAILED,
    "scheduled": tasks_pb2.TASK_STATUS_SCHEDULED,
    "cancelled": tasks_pb2.TASK_STATUS_CANCELLED,
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
    "scheduled": tasks_pb2.TASK_EVENT_TYPE_SCHEDULED,
    "timed_out": tasks_pb2.TASK_EVENT_TYPE_TIMED_OUT,
    "cancelled": tasks_pb2.TASK_EVENT_TYPE_CANCELLED,
    "progress": tasks_pb2.TASK_EVENT_TYPE_PROGRESS,
    "expired": tasks_pb2.TASK_EVENT_TYPE_EXPIRED,
}
EVENT_TYPE_FROM_PROTO = {v: k for k, v in EVENT_TYPE_TO_PROTO.items()}

METADATA_FIELD_PREFIX = "m:"
PROGRESS_FIELD_PREFIX = "p:"
DEFAULT_QUEUE = "default"


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def value_to_json(value: struct_pb2.Value, sort_keys: bool = False) -> str:
    """A protobuf Value as JSON text; a Value with nothing set is null. With sort_keys, objects'
    keys are sorted (the same value gives the same text whatever order its map was sent in)."""
    kind = value.WhichOneof("kind")
    # Scalars directly (json_format costs ~10x more); objects, lists and non-finite numbers (which
    # json_format refuses) go through json_format.
    if kind is None or kind == "null_value":
        return "null"
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "string_value":
        return compact_json(value.string_value)
    if kind == "number_value" and math.isfinite(value.number_value):
        return compact_json(value.number_value)
    return json.dumps(
        json_format.MessageToDict(value), separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys
    )


def struct_to_fields(struct: struct_pb2.Struct) -> dict[str, str]:
    """A Struct as {key: JSON-encoded value}, the form stored in the task hash's m: fields."""
    # Value by value: the scalar fast path of value_to_json, and nothing at all for no metadata.
    return {key: value_to_json(value) for key, value in struct.fields.items()}


def _timestamp(target: timestamp_pb2.Timestamp, millis: str | None) -> None:
    if millis:
        # Set directly: Timestamp.FromMilliseconds validates and costs several times more, and this
        # runs four times per event sent to every WatchTasks subscriber.
        target.seconds, remainder = divmod(int(millis), 1000)
        target.nanos = remainder * 1_000_000


def _set_value(target: struct_pb2.Value, value: Any) -> None:
    """Decoded JSON into a Value: scalars directly, objects and arrays through json_format."""
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int | float):
        target.number_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    else:
        json_format.ParseDict(value, target)


def task_from_snapshot(snapshot: Mapping[str, str], task: tasks_pb2.Task | None = None) -> tasks_pb2.Task:
    """The Task message for a stored task hash (filled into `task` when given)."""
    if task is None:
        task = tasks_pb2.Task()
    task.id = snapshot["id"]
    task.text = snapshot.get("text", "")
    task.priority = int(snapshot.get("priority", "0"))
    task.status = STATUS_TO_PROTO[snapshot["status"]]
    task.assigned_to = snapshot.get("assignedTo", "")
    task.error = snapshot.get("error", "")
    task.attempts = int(snapshot.get("attempts", "0"))
    # Until named queues and retry policies are stored (docs/lifecycle.md), every task is in the one
    # queue and is handed over once per attempt without automatic retry.
    task.queue = snapshot.get("queue", DEFAULT_QUEUE)
    task.max_attempts = int(snapshot.get("maxAttempts", "1"))
    # One pass over the fields for metadata ('m:') and progress ('p:'), merged key by key.
    metadata: dict[str, Any] = {}
    progress: dict[str, Any] = {}
    for field, value in snapshot.items():
        if field.startswith(METADATA_FIELD_PREFIX):
            metadata[field[len(METADATA_FIELD_PREFIX) :]] = json.loads(value)
        elif field.startswith(PROGRESS_FIELD_PREFIX):
            progress[field[len(PROGRESS_FIELD_PREFIX) :]] = json.loads(value)
    if metadata:
        task.metadata.update(metadata)
    if progress:
        task.progress.update(progress)
    if "result" in snapshot:
        _set_value(task.result, json.loads(snapshot["result"]))
    _timestamp(task.create_time, snapshot.get("createdAt"))
    _timestamp(task.update_time, snapshot.get("updatedAt"))
    _timestamp(task.assign_time, snapshot.get("assignedAt"))
    _timestamp(task.complete_time, snapshot.get("completedAt"))
    _timestamp(task.run_at, snapshot.get("runAt"))
    task.idempotency_key = snapshot.get("idempotencyKey", "")
    timeout = snapshot.get("timeoutMs")
    if timeout:
        task.timeout.FromMilliseconds(int(timeout))
    if task.status == tasks_pb2.TASK_STATUS_IN_PROGRESS:
        _timestamp(task.lease_deadline, snapshot.get("leaseDeadline"))
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
        task_from_snapshot(json.loads(fields["task"]), event.task)
    _timestamp(event.time, fields.get("time"))
    return event
