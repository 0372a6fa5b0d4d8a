"""The history checker finds what it is meant to find: each kind of violation, planted in an
otherwise consistent history, is reported."""

from __future__ import annotations

from typing import Any

from tests.history.checker import check


def consistent() -> dict[str, Any]:
    """t1 created, claimed by w1, completed; t2 created, claimed by w2, reassigned (w2 died)."""
    return {
        "history": [
            {"op": "create", "worker": "w1", "task": "t1", "outcome": "ok"},
            {"op": "create", "worker": "w1", "task": "t2", "outcome": "ok"},
            {"op": "claim", "worker": "w1", "task": "", "outcome": "ok", "tasks": ["t1"]},
            {"op": "claim", "worker": "w2", "task": "", "outcome": "ok", "tasks": ["t2"]},
            {"op": "complete", "worker": "w1", "task": "t1", "outcome": "ok"},
            {"op": "create", "worker": "w2", "task": "t3", "outcome": "indeterminate"},
        ],
        "events": [
            {"type": "created", "task_id": "t1", "instance_id": ""},
            {"type": "created", "task_id": "t2", "instance_id": ""},
            {"type": "claimed", "task_id": "t1", "instance_id": "w1"},
            {"type": "claimed", "task_id": "t2", "instance_id": "w2"},
            {"type": "completed", "task_id": "t1", "instance_id": "w1"},
            {"type": "reassigned", "task_id": "t2", "instance_id": "w2"},
        ],
        "hashes": {
            "t1": {"status": "completed", "assignedTo": "w1"},
            "t2": {"status": "pending", "assignedTo": ""},
        },
        "indexes": {"pending": {"t2"}, "in_progress": set(), "completed": {"t1"}, "failed": set()},
        "held_sets": {"w1": set()},
        "completed_counter": 1,
    }


def test_a_consistent_history_passes() -> None:
    assert check(**consistent()) == []


def test_a_second_holder_is_caught() -> None:
    case = consistent()
    case["events"].insert(3, {"type": "claimed", "task_id": "t1", "instance_id": "w2"})
    assert any("'claimed' while in_progress" in v for v in check(**case))


def test_a_completion_by_a_non_holder_is_caught() -> None:
    case = consistent()
    case["events"][4] = {"type": "completed", "task_id": "t1", "instance_id": "w9"}
    assert any("but the holder was" in v for v in check(**case))


def test_a_lost_acknowledged_create_is_caught() -> None:
    case = consistent()
    case["history"].append({"op": "create", "worker": "w1", "task": "t9", "outcome": "ok"})
    assert any("t9: create acknowledged" in v for v in check(**case))


def test_an_acknowledged_claim_without_its_event_is_caught() -> None:
    case = consistent()
    case["history"].append({"op": "claim", "worker": "w3", "task": "", "outcome": "ok", "tasks": ["t2"]})
    assert any("handed to w3" in v for v in check(**case))


def test_state_that_differs_from_the_stream_is_caught() -> None:
    case = consistent()
    case["hashes"]["t2"] = {"status": "in_progress", "assignedTo": "w2"}
    case["indexes"]["pending"] = set()
    case["held_sets"] = {"w2": {"t2"}}
    violations = check(**case)
    assert any("stored status in_progress" in v for v in violations)
    assert any("in status indexes []" in v for v in violations)
    assert any("held sets of ['w2']" in v for v in violations)


def test_a_wrong_counter_is_caught() -> None:
    case = consistent()
    case["completed_counter"] = 2
    assert any("completed counter 2" in v for v in check(**case))


def lifecycle_case() -> dict[str, Any]:
    """t4 created for later, promoted, claimed by w1, timed out and scheduled for a retry, promoted,
    claimed by w2, cancelled; t5 created, claimed, failed by w1 (acknowledged), expired."""
    json_of = '{{"status": "{}"}}'.format
    return {
        "history": [
            {"op": "create", "worker": "w1", "task": "t4", "outcome": "ok"},
            {"op": "create", "worker": "w1", "task": "t5", "outcome": "ok"},
            {"op": "fail", "worker": "w1", "task": "t5", "outcome": "ok"},
        ],
        "events": [
            {"type": "scheduled", "task_id": "t4", "instance_id": ""},
            {"type": "updated", "task_id": "t4", "instance_id": "", "task": json_of("pending")},
            {"type": "claimed", "task_id": "t4", "instance_id": "w1"},
            {"type": "timed_out", "task_id": "t4", "instance_id": "w1", "task": json_of("scheduled")},
            {"type": "scheduled", "task_id": "t4", "instance_id": "w1"},
            {"type": "updated", "task_id": "t4", "instance_id": "", "task": json_of("pending")},
            {"type": "claimed", "task_id": "t4", "instance_id": "w2"},
            {"type": "progress", "task_id": "t4", "instance_id": "w2"},
            {"type": "cancelled", "task_id": "t4", "instance_id": "w2"},
            {"type": "created", "task_id": "t5", "instance_id": ""},
            {"type": "claimed", "task_id": "t5", "instance_id": "w1"},
            {"type": "failed", "task_id": "t5", "instance_id": "w1"},
            {"type": "expired", "task_id": "t5", "instance_id": ""},
        ],
        "hashes": {"t4": {"status": "cancelled", "assignedTo": ""}},
        "indexes": {"cancelled": {"t4"}, "failed": set(), "scheduled": set()},
        "held_sets": {},
        "completed_counter": 0,
    }


def test_a_consistent_lifecycle_history_passes() -> None:
    assert check(**lifecycle_case()) == []


def test_lifecycle_violations_are_caught() -> None:
    case = lifecycle_case()
    case["events"][8] = {"type": "cancelled", "task_id": "t4", "instance_id": "w1"}  # not the holder
    case["events"].append({"type": "timed_out", "task_id": "t4", "instance_id": "w2"})  # not held
    case["history"].append({"op": "fail", "worker": "w2", "task": "t4", "outcome": "ok"})
    violations = check(**case)
    assert "t4: 'cancelled' by w1, but the holder was w2" in violations
    assert "t4: 'timed_out' while cancelled (held by nobody)" in violations
    assert "t4: failure by w2 acknowledged, no FAILED/SCHEDULED" in violations
