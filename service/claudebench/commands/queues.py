"""`claudebench queue ...`: list, get, pause, resume and configure named queues.

Tables by default, `--json` for machines; errors as in `claudebench task` (one line, exit 1 or 2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf import duration_pb2, json_format

from claudebench.client import Client
from claudebench.commands import tasks as task_commands
from claudebench.v1 import queues_pb2

COLUMNS = ["queue", "paused", "pending", "scheduled", "in progress", "completed", "failed", "limits"]


def run(args: argparse.Namespace) -> int:
    """Run one `queue` command; the exit code."""
    return task_commands.run(args, _dispatch)


def _seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMilliseconds(round(value * 1000))
    return duration


def _limits(queue: queues_pb2.Queue) -> str:
    parts = []
    if queue.concurrency_limit:
        parts.append(f"concurrency {queue.concurrency_limit}")
    if queue.rate_limit:
        window_ms = queue.rate_window.ToMilliseconds()
        parts.append(f"rate {queue.rate_limit}/{window_ms / 1000:g}s")
    if queue.HasField("default_timeout"):
        parts.append(f"timeout {queue.default_timeout.ToMilliseconds() / 1000:g}s")
    return ", ".join(parts) or "-"


def _row(queue: queues_pb2.Queue) -> list[str]:
    counts = (queue.pending, queue.scheduled, queue.in_progress, queue.completed, queue.failed)
    return [queue.name, "yes" if queue.paused else "no", *map(str, counts), _limits(queue)]


def _dispatch(client: Client, args: argparse.Namespace) -> None:
    stub = client.queues
    timeout, as_json, action = client.timeout, args.json, args.action
    if action == "list":
        listed = stub.ListQueues(queues_pb2.ListQueuesRequest(), timeout=timeout)
        task_commands.print_message(
            listed, as_json, lambda: task_commands.table(COLUMNS, [_row(q) for q in listed.queues])
        )
        return
    response: Any
    if action == "get":
        response = stub.GetQueue(queues_pb2.GetQueueRequest(queue=args.queue), timeout=timeout)
    elif action == "pause":
        response = stub.PauseQueue(queues_pb2.PauseQueueRequest(queue=args.queue), timeout=timeout)
    elif action == "resume":
        response = stub.ResumeQueue(queues_pb2.ResumeQueueRequest(queue=args.queue), timeout=timeout)
    else:
        request = queues_pb2.ConfigureQueueRequest(queue=args.queue)
        if args.concurrency_limit is not None:
            request.concurrency_limit = args.concurrency_limit
        if args.rate_limit is not None:
            request.rate_limit = args.rate_limit
        if args.rate_window is not None:
            request.rate_window.CopyFrom(_seconds(args.rate_window))
        if args.default_timeout is not None:
            request.default_timeout.CopyFrom(_seconds(args.default_timeout))
        response = stub.ConfigureQueue(request, timeout=timeout)
    if as_json:
        print(json.dumps(json_format.MessageToDict(response), sort_keys=True))
    else:
        print(task_commands.table(COLUMNS, [_row(response.queue)]))


def add_parser(commands: Any) -> None:
    """The `queue` subcommand."""
    queue = commands.add_parser("queue", help="list, get, pause, resume or configure named queues")
    actions = queue.add_subparsers(dest="action", required=True)
    parsers = [actions.add_parser("list", help="every queue with its counts and limits")]
    for action, text in (
        ("get", "one queue's settings and counts"),
        ("pause", "hand out nothing from the queue (it still accepts tasks)"),
        ("resume", "hand out the queue's tasks again"),
        ("configure", "change the queue's limits (0 clears one); creates the queue"),
    ):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("queue")
        parsers.append(parser)
    configure = parsers[-1]
    configure.add_argument("--concurrency-limit", type=int, help="most tasks in progress at once")
    configure.add_argument("--rate-limit", type=int, help="most claims per --rate-window")
    configure.add_argument("--rate-window", type=float, help="seconds of the sliding rate window")
    configure.add_argument("--default-timeout", type=float, help="seconds of lease for its tasks")
    for parser in parsers:
        task_commands.common_flags(parser)
