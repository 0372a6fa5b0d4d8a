"""A randomized worker for the history checks: registers, heartbeats, creates (some for later, some
with a timeout or a retry policy), claims, completes (or fails), releases, updates, reports progress,
cancels, hangs on a task until its lease runs out, and sometimes dies holding tasks. Every call and
its outcome is appended to a JSON-lines history file; a call that failed with UNAVAILABLE or
DEADLINE_EXCEEDED is "indeterminate" (it may or may not have happened, as after a Redis crash).

Run as: python -m tests.history.worker ADDRESS WORKER_ID SECONDS SEED HISTORY_FILE
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import grpc
from google.protobuf import duration_pb2, struct_pb2

from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc

INDETERMINATE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class Recorder:
    def __init__(self, out: IO[str], worker: str) -> None:
        self._out = out
        self.worker = worker
        self.last = ""  # the outcome of the latest call

    def call(self, op: str, task: str, fn: Callable[[], Any]) -> Any | None:
        """Run one RPC, record it; the response on OK, else None."""
        record: dict[str, Any] = {"worker": self.worker, "op": op, "task": task, "start": time.time()}
        try:
            response = fn()
            record["outcome"] = "ok"
        except grpc.RpcError as exc:
            code = exc.code()
            record["outcome"] = "indeterminate" if code in INDETERMINATE else "fail"
            record["code"] = code.name
            response = None
        record["end"] = time.time()
        self.last = record["outcome"]
        if response is not None and op in ("claim", "register"):
            held = response.tasks if op == "claim" else response.assigned_tasks
            record["tasks"] = [t.id for t in held]
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()
        return response


def main() -> None:
    address, worker, seconds, seed, path = sys.argv[1:6]
    rng = random.Random(int(seed))
    deadline = time.monotonic() + float(seconds)
    # w0, and one other worker in four, die (exit at once, right after a claim, holding what they
    # hold) somewhere in the run.
    dies = worker == "w0" or rng.random() < 0.25
    dies_at = time.monotonic() + rng.uniform(0.3, 0.8) * float(seconds) if dies else None
    created = 0
    with open(path, "a") as out, grpc.insecure_channel(address) as channel:
        rec = Recorder(out, worker)
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)

        def register() -> list[str]:
            """Register (again); the ids of the tasks handed over at once."""
            reply = rec.call(
                "register",
                "",
                lambda: system.Register(
                    system_pb2.RegisterRequest(instance_id=worker, max_tasks=3), timeout=2
                ),
            )
            return [] if reply is None else [t.id for t in reply.assigned_tasks]

        def let_go(op: str, task_id: str, fn: Callable[[], Any]) -> None:
            """Complete or release a held task: no longer ours, unless the reply was lost."""
            rec.call(op, task_id, fn)
            if rec.last != "indeterminate":  # done, or no longer ours
                held.remove(task_id)

        held = register()
        while time.monotonic() < deadline:
            beat = rec.call(
                "heartbeat",
                "",
                lambda: system.Heartbeat(system_pb2.HeartbeatRequest(instance_id=worker), timeout=2),
            )
            if beat is None:
                # Declared offline (or Redis is down): register again, as a real worker would.
                held = register()
            for _ in range(rng.randint(0, 2)):
                task_id = f"{worker}-{created}"
                created += 1
                request = tasks_pb2.CreateTaskRequest(text="h", task_id=task_id, priority=rng.randint(0, 100))
                if rng.random() < 0.25:
                    request.delay.FromMilliseconds(rng.randint(50, 300))
                if rng.random() < 0.3:
                    request.timeout.FromMilliseconds(rng.randint(400, 800))
                if rng.random() < 0.3:
                    request.retry.CopyFrom(
                        tasks_pb2.RetryPolicy(
                            max_attempts=3, initial_backoff=duration_pb2.Duration(nanos=50_000_000)
                        )
                    )
                rec.call(
                    "create",
                    task_id,
                    lambda request=request: tasks.CreateTask(request, timeout=2),  # type: ignore[misc]
                )
                if rng.random() < 0.05:
                    rec.call(
                        "cancel",
                        task_id,
                        lambda task_id=task_id: tasks.CancelTask(  # type: ignore[misc]
                            tasks_pb2.CancelTaskRequest(task_id=task_id, reason="changed my mind"), timeout=2
                        ),
                    )
            claimed = rec.call(
                "claim",
                "",
                lambda: tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id=worker, max_tasks=2), timeout=2),
            )
            if claimed is not None:
                held.extend(t.id for t in claimed.tasks)
            elif rec.last == "indeterminate" or len(held) >= 3:
                # A claim whose reply was lost may have handed us tasks: ask what we hold, as a
                # real worker reconciles after a reconnect (a read: not part of the history).
                mine = rec.call(
                    "list",
                    "",
                    lambda: tasks.ListTasks(tasks_pb2.ListTasksRequest(assigned_to=worker), timeout=2),
                )
                if mine is not None:
                    held = [t.id for t in mine.tasks]
            if dies_at is not None and time.monotonic() > dies_at and held:
                os._exit(0)  # dies holding tasks: recovery must hand them back
            for task_id in list(held):
                roll = rng.random()
                if roll < 0.03:
                    held.remove(task_id)  # hangs on it (heartbeating): its lease, if any, runs out
                elif roll < 0.1:
                    let_go(
                        "fail",
                        task_id,
                        lambda task_id=task_id: tasks.CompleteTask(  # type: ignore[misc]
                            tasks_pb2.CompleteTaskRequest(task_id=task_id, worker_id=worker, error="flaky"),
                            timeout=2,
                        ),
                    )
                elif roll < 0.18:
                    rec.call(
                        "progress",
                        task_id,
                        lambda task_id=task_id: tasks.ReportProgress(  # type: ignore[misc]
                            tasks_pb2.ReportProgressRequest(
                                task_id=task_id,
                                worker_id=worker,
                                progress=struct_pb2.Struct(fields={"step": struct_pb2.Value(number_value=1)}),
                            ),
                            timeout=2,
                        ),
                    )
                elif roll < 0.65:
                    let_go(
                        "complete",
                        task_id,
                        lambda task_id=task_id: tasks.CompleteTask(  # type: ignore[misc]
                            tasks_pb2.CompleteTaskRequest(
                                task_id=task_id, worker_id=worker, result=struct_pb2.Value(bool_value=True)
                            ),
                            timeout=2,
                        ),
                    )
                elif roll < 0.8:
                    let_go(
                        "release",
                        task_id,
                        lambda task_id=task_id: tasks.ReleaseTask(  # type: ignore[misc]
                            tasks_pb2.ReleaseTaskRequest(task_id=task_id, worker_id=worker), timeout=2
                        ),
                    )
                elif roll < 0.9:
                    rec.call(
                        "update",
                        task_id,
                        lambda task_id=task_id: tasks.UpdateTask(  # type: ignore[misc]
                            tasks_pb2.UpdateTaskRequest(task_id=task_id, text="updated"), timeout=2
                        ),
                    )
            time.sleep(rng.uniform(0, 0.02))


if __name__ == "__main__":
    main()
