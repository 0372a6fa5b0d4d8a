"""A short randomized history (6 worker processes, 2 server replicas, worker deaths, one Redis
SIGKILL and restart with appendfsync always; delayed tasks, deadlines, retries, cancellations,
progress and retention in the mix), checked against the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.history.run import run


@pytest.mark.timeout(120)
def test_a_concurrent_history_with_faults_keeps_every_invariant(tmp_path: Path) -> None:
    report = run(tmp_path, seconds=8, workers=6, seed=3)
    assert report.violations == []
    # The run did what it claims: real contention, completions, deaths recovered, a crash ridden out.
    assert report.events.get("completed", 0) > 50
    assert report.events.get("claimed", 0) > report.events.get("completed", 0) / 2
    assert report.events.get("reassigned", 0) > 0, "no dead worker's task was recovered"
    assert report.redis_restarts == 1
    assert report.outcomes.get("indeterminate", 0) > 0, "the Redis crash was not observed"
    # The lifecycle is in the mix: delays and retries, deadlines, cancellations, progress, retention.
    for kind in ("scheduled", "timed_out", "cancelled", "progress", "expired"):
        assert report.events.get(kind, 0) > 0, f"no {kind} event in the run"
