"""`claudebench schedule ...`: create, list, get, pause, resume and delete periodic schedules.

Tables by default, `--json` for machines; errors as in `claudebench task` (one line, exit 1 or 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from google.protobuf import duration_pb2

from claudebench.client import Client
from claudebench.commands import tasks as task_commands
from claudebench.v1 import tasks_pb2 as pb

HEADER = ["id", "every", "state", "next run (UTC)", "last task", "text"]


def run(args: argparse.Namespace) -> int:
    """Run one `schedule` command; the exit code."""
    return task_commands.run(args, _dispatch)


def _when(schedule: pb.Schedule) -> str:
    if schedule.WhichOneof("spec") == "cron":
        return f"{schedule.cron} ({schedule.time_zone})"
    return f"{schedule.interval.ToTimedelta().total_seconds():g}s"


def _rows(schedules: Sequence[pb.Schedule]) -> list[list[str]]:
    return [
        [
            s.schedule_id,
            _when(s),
            "paused" if s.paused else "running",
            s.next_run_time.ToDatetime().isoformat(timespec="seconds")
            if s.HasField("next_run_time")
            else "-",
            s.last_task_id or "-",
            s.template.text,
        ]
        for s in schedules
    ]


def _one(response: Any, as_json: bool) -> None:
    task_commands.print_message(
        response, as_json, lambda: task_commands.table(HEADER, _rows([response.schedule]))
    )


def _create(args: argparse.Namespace) -> pb.CreateScheduleRequest:
    template = pb.CreateTaskRequest(text=args.text)
    if args.priority is not None:
        template.priority = args.priority
    if args.metadata:
        template.metadata.update(task_commands._json("--metadata", args.metadata, want_object=True))
    request = pb.CreateScheduleRequest(schedule_id=args.schedule_id, template=template)
    if args.cron is not None:
        request.cron = args.cron
        request.time_zone = args.time_zone or ""
    else:
        request.interval.CopyFrom(duration_pb2.Duration(seconds=args.every))
        if args.time_zone:
            request.time_zone = args.time_zone  # refused by the server, which says why
    if args.paused:
        request.paused = True
    return request


def _dispatch(client: Client, args: argparse.Namespace) -> None:
    t, timeout, as_json = client.tasks, client.timeout, args.json
    action = args.action
    if action == "create":
        _one(t.CreateSchedule(_create(args), timeout=timeout), as_json)
    elif action == "get":
        _one(t.GetSchedule(pb.GetScheduleRequest(schedule_id=args.schedule_id), timeout=timeout), as_json)
    elif action == "pause":
        _one(t.PauseSchedule(pb.PauseScheduleRequest(schedule_id=args.schedule_id), timeout=timeout), as_json)
    elif action == "resume":
        _one(
            t.ResumeSchedule(pb.ResumeScheduleRequest(schedule_id=args.schedule_id), timeout=timeout), as_json
        )
    elif action == "delete":
        deleted = t.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=args.schedule_id), timeout=timeout)
        task_commands.print_message(deleted, as_json, lambda: f"deleted schedule {args.schedule_id}")
    elif action == "list":
        _list(client, args)


def _list(client: Client, args: argparse.Namespace) -> None:
    """One page of ListSchedules (the token of the next on stderr), or with --all every page."""
    request = pb.ListSchedulesRequest(page_size=args.limit, page_token=args.page_token)
    page = client.tasks.ListSchedules(request, timeout=client.timeout)
    if args.all:
        schedules = list(page.schedules)
        while page.next_page_token:
            request.page_token = page.next_page_token
            page = client.tasks.ListSchedules(request, timeout=client.timeout)
            schedules += page.schedules
        page = pb.ListSchedulesResponse(schedules=schedules)
    task_commands.print_message(page, args.json, lambda: task_commands.table(HEADER, _rows(page.schedules)))
    if page.next_page_token:
        print(f"more: --page-token {page.next_page_token}", file=sys.stderr)


def add_parser(commands: Any) -> None:
    """The `schedule` subcommand."""
    schedule = commands.add_parser("schedule", help="create, list, get, pause, resume or delete schedules")
    actions = schedule.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a schedule whose every tick creates a task")
    create.add_argument("schedule_id")
    create.add_argument("text", help="the text of each tick's task")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help="a 5-field cron expression, e.g. '0 3 * * *'")
    when.add_argument("--every", type=int, metavar="SECONDS", help="a fixed interval in seconds")
    create.add_argument("--time-zone", help="the IANA time zone of --cron (default UTC)")
    create.add_argument("--priority", type=int, help="each task's priority (default 50)")
    create.add_argument("--metadata", help="each task's metadata, a JSON object")
    create.add_argument("--paused", action="store_true", help="create it paused")
    listing = actions.add_parser("list")
    listing.add_argument("--limit", type=int, default=100, help="schedules per page")
    listing.add_argument("--page-token", default="", help="the page a previous list said is next")
    listing.add_argument("--all", action="store_true", help="follow every page")
    parsers = [create, listing]
    for action, text in (
        ("get", "show a schedule"),
        ("pause", "stop its ticks"),
        ("resume", "start its ticks again (from the next one after now)"),
        ("delete", "remove it (the tasks it created stay)"),
    ):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("schedule_id")
        parsers.append(parser)
    for parser in parsers:
        task_commands.common_flags(parser)
