"""Checks a recorded history and the final Redis state against the model of a task's life
(shared/reference/claudebench-semantics.md, "Suggested invariants").

The event stream is the order of truth: every state change appends its event in the same script.
Replaying it per task with the legal transitions proves that no task was ever held by two workers
at once; comparing it with the clients' acknowledged calls and with the final hashes, indexes and
counters proves that nothing acknowledged was lost and that every event matches a state change.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EVERY_STATUS = {"pending", "in_progress", "completed", "failed", "scheduled", "cancelled"}
# event type -> statuses the task may be in before it, and the status after it (None: the status
# its snapshot says, e.g. an UPDATED that promoted a scheduled task or retried a failed one).
TRANSITIONS: dict[str, tuple[set[str], str | None]] = {
    "created": ({"absent"}, "pending"),
    "claimed": ({"pending"}, "in_progress"),
    "assigned": ({"pending"}, "in_progress"),
    "completed": ({"in_progress"}, "completed"),
    "failed": ({"in_progress"}, "failed"),
    "released": ({"in_progress"}, "pending"),
    "reassigned": ({"in_progress"}, "pending"),
    "updated": (EVERY_STATUS, None),
    "deleted": (EVERY_STATUS, "absent"),
    # Created for later, or a failed / timed-out / orphaned attempt scheduled for a retry.
    "scheduled": ({"absent", "in_progress"}, "scheduled"),
    # The holder's lease ran out: back to PENDING (failover rule), or still in progress here until
    # the SCHEDULED / FAILED event that follows it in the same script.
    "timed_out": ({"in_progress"}, None),
    "cancelled": ({"pending", "scheduled", "in_progress"}, "cancelled"),
    "progress": ({"in_progress"}, None),
    "expired": ({"completed", "failed", "cancelled"}, "absent"),
}
HANDOVERS = ("claimed", "assigned")
# Events whose actor must be the task's holder.
BY_HOLDER = ("completed", "released", "reassigned", "timed_out", "progress")
# Events whose actor must be the holder when the task was in progress.
BY_HOLDER_IF_HELD = ("scheduled", "cancelled", "failed")


def _after(kind: str, event: Mapping[str, str], before: str) -> str:
    """The status after an event whose table entry says None: the snapshot's, except that a
    TIMED_OUT followed by its SCHEDULED / FAILED event stays in progress until that event."""
    after = TRANSITIONS[kind][1]
    if after is not None:
        return after
    snapshot = json.loads(event["task"]) if "task" in event else {}
    status = str(snapshot.get("status", before))
    if kind == "timed_out" and status != "pending":
        return before
    return status


@dataclass
class Replayed:
    status: str = "absent"
    holder: str = ""
    handovers: list[str] = field(default_factory=list)  # instance ids, in order
    completions: list[str] = field(default_factory=list)  # "completed"/"failed" by the holder
    failures: list[str] = field(default_factory=list)  # holders whose attempt failed or was retried


def replay(events: Iterable[Mapping[str, str]], violations: list[str]) -> dict[str, Replayed]:
    """Each task's life from the stream, checking every transition."""
    tasks: dict[str, Replayed] = {}
    for event in events:
        kind, task_id, actor = event["type"], event["task_id"], event.get("instance_id", "")
        state = tasks.setdefault(task_id, Replayed())
        allowed, after = TRANSITIONS[kind]
        if state.status not in allowed:
            violations.append(
                f"{task_id}: '{kind}' while {state.status} (held by {state.holder or 'nobody'})"
            )
        held_check = kind in BY_HOLDER or (kind in BY_HOLDER_IF_HELD and state.status == "in_progress")
        if held_check and actor != state.holder:
            violations.append(
                f"{task_id}: '{kind}' by {actor}, but the holder was {state.holder or 'nobody'}"
            )
        after = _after(kind, event, state.status)
        if kind in HANDOVERS:
            state.holder = actor
            state.handovers.append(actor)
        elif after != "in_progress":
            if kind in ("completed", "failed") and actor:
                state.completions.append(actor)
            if kind in ("failed", "scheduled") and actor:
                state.failures.append(actor)
            state.holder = ""
        state.status = after
    return tasks


def check(
    history: list[dict[str, Any]],
    events: list[Mapping[str, str]],
    hashes: Mapping[str, Mapping[str, str]],
    indexes: Mapping[str, set[str]],
    held_sets: Mapping[str, set[str]],
    completed_counter: int,
) -> list[str]:
    """Every violation found (empty: the history is consistent with the model)."""
    violations: list[str] = []
    tasks = replay(events, violations)

    # Every acknowledged create exists (or was deleted, with its event).
    for call in history:
        if call["op"] == "create" and call["outcome"] == "ok" and call["task"] not in tasks:
            violations.append(f"{call['task']}: create acknowledged but no 'created' event")

    # Every acknowledged handover and completion is in the stream, once per acknowledgement.
    acked_handovers: Counter[tuple[str, str]] = Counter()
    for call in history:
        if call["op"] in ("claim", "register") and call["outcome"] == "ok":
            acked_handovers.update((task_id, call["worker"]) for task_id in call.get("tasks", []))
    streamed_handovers = Counter((t, w) for t, s in tasks.items() for w in s.handovers)
    for pair, count in acked_handovers.items():
        if streamed_handovers[pair] < count:
            violations.append(
                f"{pair[0]}: handed to {pair[1]} {count} times, but {streamed_handovers[pair]} events"
            )
    for call in history:
        acknowledged = call["op"] == "complete" and call["outcome"] == "ok"
        if acknowledged and call["worker"] not in tasks.get(call["task"], Replayed()).completions:
            violations.append(f"{call['task']}: completion by {call['worker']} acknowledged, no event")
        failed = call["op"] == "fail" and call["outcome"] == "ok"
        if failed and call["worker"] not in tasks.get(call["task"], Replayed()).failures:
            violations.append(
                f"{call['task']}: failure by {call['worker']} acknowledged, no FAILED/SCHEDULED"
            )

    # The final state is the replayed state: hash, status index, holder's set.
    all_indexed = set().union(*indexes.values()) if indexes else set()
    for task_id, state in tasks.items():
        stored = hashes.get(task_id)
        if state.status == "absent":
            if stored:
                violations.append(f"{task_id}: deleted in the stream but its hash exists")
            continue
        if not stored:
            violations.append(f"{task_id}: {state.status} in the stream but it has no hash")
            continue
        if stored.get("status") != state.status:
            violations.append(f"{task_id}: stored status {stored.get('status')}, replayed {state.status}")
        # A finished task keeps its last holder in assignedTo (a repeated CompleteTask is answered
        # from it); only an unfinished task's holder is compared.
        if state.status in ("pending", "in_progress") and stored.get("assignedTo", "") != state.holder:
            violations.append(
                f"{task_id}: stored holder {stored.get('assignedTo')!r}, replayed {state.holder!r}"
            )
        in_indexes = [s for s, members in indexes.items() if task_id in members]
        if in_indexes != [state.status]:
            violations.append(f"{task_id}: in status indexes {in_indexes}, expected [{state.status}]")
        holders = [w for w, members in held_sets.items() if task_id in members]
        if holders != ([state.holder] if state.holder else []):
            violations.append(f"{task_id}: in the held sets of {holders}, holder {state.holder!r}")
    for task_id in all_indexed - set(tasks):
        violations.append(f"{task_id}: indexed but never created in the stream")

    # Counters equal the truth.
    completed_events = sum(1 for e in events if e["type"] == "completed")
    if completed_counter != completed_events:
        violations.append(f"completed counter {completed_counter}, completed events {completed_events}")
    return violations
