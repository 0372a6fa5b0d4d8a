"""`claudebench task ...`, `claudebench state`, `claudebench metrics`: the API for people.

Tables by default, `--json` for machines; a refused call prints its gRPC status and message and
exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from claudebench.client import Client
from claudebench.client.async_client import to_struct, to_value
from claudebench.v1 import system_pb2, tasks_pb2

STATUSES = {"pending": 1, "in_progress": 2, "completed": 3, "failed": 4}


def _short(value: int, prefix: str, enum: Any) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _task_rows(tasks: Sequence[tasks_pb2.Task]) -> list[list[str]]:
    return [
        [
            t.id,
            _short(t.status, "TASK_STATUS_", tasks_pb2.TaskStatus),
            str(t.priority),
            t.assigned_to or "-",
            t.text[:60],
        ]
        for t in tasks
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _print(message: Message, as_json: bool, human: Callable[[], str]) -> None:
    if as_json:
        print(json_format.MessageToJson(message, indent=None, sort_keys=True))
    else:
        print(human())


def _tasks_out(response: Message, tasks: Sequence[tasks_pb2.Task], as_json: bool) -> None:
    _print(
        response,
        as_json,
        lambda: table(["id", "status", "priority", "assigned to", "text"], _task_rows(tasks)),
    )


def run(args: argparse.Namespace) -> int:
    """Run one client command; the exit code."""
    try:
        with Client(args.server) as client:
            _dispatch(client, args)
        return 0
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class BadInput(ValueError):
    """A flag's value the command cannot use (not JSON, not an object)."""


def _json(flag: str, text: str, want_object: bool = False) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{flag} is not JSON ({exc}): {text!r}") from None
    if want_object and not isinstance(value, dict):
        raise BadInput(f'{flag} must be a JSON object like \'{{"key": "value"}}\', not {text!r}')
    return value


def _dispatch(client: Client, args: argparse.Namespace) -> None:
    t, s, timeout, as_json = client.tasks, client.system, client.timeout, args.json
    if args.command == "state":
        state = s.GetState(system_pb2.GetStateRequest(recent_events=args.events), timeout=timeout)
        rows = [
            [i.instance_id, i.status, str(i.held_tasks), str(i.max_tasks), ",".join(i.roles)]
            for i in state.instances
        ]
        counts = ", ".join(f"{k} {v}" for k, v in sorted(state.task_counts.items()))
        _print(
            state,
            as_json,
            lambda: (
                f"tasks: {counts}\nscript version {state.script_version}, "
                f"state version {state.state_version}\n"
                + table(["instance", "status", "held", "max", "roles"], rows)
            ),
        )
        return
    if args.command == "metrics":
        m = s.GetMetrics(system_pb2.GetMetricsRequest(), timeout=timeout)
        rows = [[n, str(x.calls), f"{x.average_ms:.3f}", str(x.errors)] for n, x in sorted(m.scripts.items())]
        _print(
            m,
            as_json,
            lambda: (
                f"finished/s {m.throughput_per_second:.2f}, average wait {m.average_wait_ms:.1f} ms, "
                f"live instances {m.live_instances}\n" + table(["script", "calls", "avg ms", "errors"], rows)
            ),
        )
        return
    action = args.action
    if action == "create":
        request = tasks_pb2.CreateTaskRequest(
            text=args.text, metadata=to_struct(_json("--metadata", args.metadata or "{}", want_object=True))
        )
        if args.priority is not None:
            request.priority = args.priority
        if args.id:
            request.task_id = args.id
        created = t.CreateTask(request, timeout=timeout)
        _tasks_out(created, [created.task], as_json)
    elif action == "get":
        got = t.GetTask(tasks_pb2.GetTaskRequest(task_id=args.task_id), timeout=timeout)
        _tasks_out(got, [got.task], as_json)
    elif action == "list":
        listing = tasks_pb2.ListTasksRequest(page_size=args.limit)
        if args.status:
            listing.status = STATUSES[args.status]  # type: ignore[assignment]
        page = t.ListTasks(listing, timeout=timeout)
        _tasks_out(page, page.tasks, as_json)
    elif action == "claim":
        claimed = t.ClaimTask(
            tasks_pb2.ClaimTaskRequest(worker_id=args.worker_id, max_tasks=args.max), timeout=timeout
        )
        _tasks_out(claimed, claimed.tasks, as_json)
    elif action == "complete":
        completion = tasks_pb2.CompleteTaskRequest(task_id=args.task_id, worker_id=args.worker_id)
        if args.error is not None:
            completion.error = args.error
        else:
            completion.result.CopyFrom(to_value(_json("--result", args.result)))
        done = t.CompleteTask(completion, timeout=timeout)
        _tasks_out(done, [done.task], as_json)
    elif action == "update":
        update = tasks_pb2.UpdateTaskRequest(task_id=args.task_id)
        if args.text is not None:
            update.text = args.text
        if args.priority is not None:
            update.priority = args.priority
        if args.status is not None:
            update.status = STATUSES[args.status]  # type: ignore[assignment]
        updated = t.UpdateTask(update, timeout=timeout)
        _tasks_out(updated, [updated.task], as_json)
    elif action == "delete":
        t.DeleteTask(tasks_pb2.DeleteTaskRequest(task_id=args.task_id, force=args.force), timeout=timeout)
        print(json.dumps({"deleted": args.task_id}) if as_json else f"deleted {args.task_id}")


def add_parsers(commands: Any) -> None:
    """The `task`, `state` and `metrics` subcommands."""

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--server", default="127.0.0.1:50051", help="host:port of a claudebench server")
        parser.add_argument("--json", action="store_true", help="print the response as JSON")

    task = commands.add_parser("task", help="create, get, list, claim, complete, update or delete tasks")
    actions = task.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create")
    create.add_argument("text")
    create.add_argument("--priority", type=int)
    create.add_argument("--metadata", help="a JSON object")
    create.add_argument("--id", help="a task id of your choosing")
    get = actions.add_parser("get")
    get.add_argument("task_id")
    listing = actions.add_parser("list")
    listing.add_argument("--status", choices=sorted(STATUSES))
    listing.add_argument("--limit", type=int, default=100)
    claim = actions.add_parser("claim")
    claim.add_argument("worker_id")
    claim.add_argument("--max", type=int, default=1)
    complete = actions.add_parser("complete")
    complete.add_argument("task_id")
    complete.add_argument("worker_id")
    outcome = complete.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--result", help="a JSON value")
    outcome.add_argument("--error", help="why the task failed")
    update = actions.add_parser("update")
    update.add_argument("task_id")
    update.add_argument("--text")
    update.add_argument("--priority", type=int)
    update.add_argument("--status", choices=sorted(STATUSES))
    delete = actions.add_parser("delete")
    delete.add_argument("task_id")
    delete.add_argument("--force", action="store_true", help="delete it even while a worker holds it")
    for parser in (create, get, listing, claim, complete, update, delete):
        common(parser)
    state = commands.add_parser("state", help="instances, task counts, versions")
    state.add_argument("--events", type=int, default=0, help="also fetch this many recent events")
    common(state)
    common(commands.add_parser("metrics", help="queue and per-script metrics"))
