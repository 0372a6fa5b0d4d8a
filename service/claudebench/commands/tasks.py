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
from claudebench.commands import connection
from claudebench.commands.watch import format_event
from claudebench.v1 import system_pb2, tasks_pb2

STATUSES = {"pending": 1, "in_progress": 2, "completed": 3, "failed": 4, "scheduled": 5, "cancelled": 6}


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


def print_message(message: Message, as_json: bool, human: Callable[[], str]) -> None:
    if as_json:
        print(json_format.MessageToJson(message, indent=None, sort_keys=True))
    else:
        print(human())


def _tasks_out(response: Message, tasks: Sequence[tasks_pb2.Task], as_json: bool) -> None:
    print_message(
        response,
        as_json,
        lambda: table(["id", "status", "priority", "assigned to", "text"], _task_rows(tasks)),
    )


def run(
    args: argparse.Namespace, dispatch: Callable[[Client, argparse.Namespace], None] | None = None
) -> int:
    """Run one client command (by default a `task`, `state` or `metrics` one); the exit code."""
    try:
        with Client(args.server, **connection.security(args)) as client:
            (dispatch or _dispatch)(client, args)
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
        print_message(
            state,
            as_json,
            lambda: (
                f"tasks: {counts}\nscript version {state.script_version}, "
                f"state version {state.state_version}\n"
                + table(["instance", "status", "held", "max", "roles"], rows)
                + "".join(f"\n{format_event(e)}" for e in state.recent_events)
            ),
        )
        return
    if args.command == "metrics":
        m = s.GetMetrics(system_pb2.GetMetricsRequest(), timeout=timeout)
        rows = [[n, str(x.calls), f"{x.average_ms:.3f}", str(x.errors)] for n, x in sorted(m.scripts.items())]
        print_message(
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
        print_message(got, as_json, lambda: _task_detail(got.task))
    elif action == "list":
        _list(client, args)
    elif action == "claim":
        worker = args.worker or args.worker_id
        if not worker:
            raise BadInput("task claim needs --worker W (the instance that claims)")
        claimed = t.ClaimTask(
            tasks_pb2.ClaimTaskRequest(worker_id=worker, max_tasks=args.max), timeout=timeout
        )
        _tasks_out(claimed, claimed.tasks, as_json)
    elif action == "release":
        released = t.ReleaseTask(
            tasks_pb2.ReleaseTaskRequest(
                task_id=args.task_id, worker_id=args.worker, reason=args.reason or ""
            ),
            timeout=timeout,
        )
        _tasks_out(released, [released.task], as_json)
    elif action == "assign":
        assigned = t.AssignTask(
            tasks_pb2.AssignTaskRequest(task_id=args.task_id, instance_id=args.instance), timeout=timeout
        )
        _tasks_out(assigned, [assigned.task], as_json)
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
    elif action == "cancel":
        cancelled = t.CancelTask(
            tasks_pb2.CancelTaskRequest(task_id=args.task_id, reason=args.reason or ""), timeout=timeout
        )
        _tasks_out(cancelled, [cancelled.task], as_json)
    elif action == "retry":
        retry = tasks_pb2.RetryTaskRequest(task_id=args.task_id)
        if args.reset_attempts:
            retry.reset_attempts = True
        retried = t.RetryTask(retry, timeout=timeout)
        _tasks_out(retried, [retried.task], as_json)
    elif action == "delete":
        t.DeleteTask(tasks_pb2.DeleteTaskRequest(task_id=args.task_id, force=args.force), timeout=timeout)
        print(json.dumps({"deleted": args.task_id}) if as_json else f"deleted {args.task_id}")


def common_flags(parser: argparse.ArgumentParser) -> None:
    """--server, --json and the connection flags, which every client command takes."""
    parser.add_argument("--server", default="127.0.0.1:50051", help="host:port of a claudebench server")
    parser.add_argument("--json", action="store_true", help="print the response as JSON")
    connection.add_flags(parser)


def _list(client: Client, args: argparse.Namespace) -> None:
    """One page of ListTasks (the token of the next on stderr), or with --all every page."""
    request = tasks_pb2.ListTasksRequest(page_size=args.limit, page_token=args.page_token)
    if args.status:
        request.status = STATUSES[args.status]  # type: ignore[assignment]
    page = client.tasks.ListTasks(request, timeout=client.timeout)
    if args.all:
        tasks = list(page.tasks)
        while page.next_page_token:
            request.page_token = page.next_page_token
            page = client.tasks.ListTasks(request, timeout=client.timeout)
            tasks += page.tasks
        page = tasks_pb2.ListTasksResponse(tasks=tasks, total_size=page.total_size)
    _tasks_out(page, page.tasks, args.json)
    if page.next_page_token:
        print(f"more: --page-token {page.next_page_token}", file=sys.stderr)


def _readable(message: Message) -> str:
    """A Value or Struct as JSON text, whole numbers without the ".0" protobuf's doubles give them."""

    def plain(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(json_format.MessageToDict(message)), sort_keys=True)


def _task_detail(task: tasks_pb2.Task) -> str:
    """The table row, then what a person asks a finished or running task: result, error, ..."""
    lines = [table(["id", "status", "priority", "assigned to", "text"], _task_rows([task]))]
    if task.HasField("result"):
        lines.append(f"result: {_readable(task.result)}")
    if task.error:
        lines.append(f"error: {task.error}")
    for name in ("metadata", "progress"):
        if task.HasField(name) and getattr(task, name).fields:
            lines.append(f"{name}: {_readable(getattr(task, name))}")
    if task.attempts:
        lines.append(f"attempts: {task.attempts}")
    return "\n".join(lines)


def add_parsers(commands: Any) -> None:
    """The `task`, `state` and `metrics` subcommands."""

    task = commands.add_parser(
        "task",
        help="create, get, list, claim, release, assign, complete, update, cancel, retry or delete tasks",
    )
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
    listing.add_argument("--limit", type=int, default=100, help="tasks per page")
    listing.add_argument("--page-token", default="", help="the page a previous list said is next")
    listing.add_argument("--all", action="store_true", help="follow every page")
    claim = actions.add_parser("claim")
    claim.add_argument("worker_id", nargs="?", help=argparse.SUPPRESS)
    claim.add_argument("--worker", help="the registered instance that claims")
    claim.add_argument("--max", type=int, default=1)
    release = actions.add_parser("release", help="give a held task back to the queue")
    release.add_argument("task_id")
    release.add_argument("--worker", required=True, help="the instance that holds it")
    release.add_argument("--reason", help="why, recorded with the release")
    assign = actions.add_parser("assign", help="hand a pending task to an instance")
    assign.add_argument("task_id")
    assign.add_argument("--instance", required=True, help="the registered instance to hold it")
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
    cancel = actions.add_parser("cancel", help="cancel a pending, scheduled or in-progress task")
    cancel.add_argument("task_id")
    cancel.add_argument("--reason", help="why, recorded on the task")
    retry = actions.add_parser("retry", help="send a failed or cancelled task back to the queue")
    retry.add_argument("task_id")
    retry.add_argument("--reset-attempts", action="store_true", help="count attempts from zero again")
    delete = actions.add_parser("delete")
    delete.add_argument("task_id")
    delete.add_argument("--force", action="store_true", help="delete it even while a worker holds it")
    for parser in (create, get, listing, claim, release, assign, complete, update, cancel, retry, delete):
        common_flags(parser)
    state = commands.add_parser("state", help="instances, task counts, versions")
    state.add_argument("--events", type=int, default=0, help="also fetch this many recent events")
    common_flags(state)
    common_flags(commands.add_parser("metrics", help="queue and per-script metrics"))
