"""`claudebench instance ...`: register, heartbeat, unregister and list worker instances by hand.

Tables by default, `--json` for machines; errors as in `claudebench task` (one line, exit 1 or 2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf import json_format

from claudebench.client import Client
from claudebench.commands import tasks as task_commands
from claudebench.v1 import system_pb2


def run(args: argparse.Namespace) -> int:
    """Run one `instance` command; the exit code."""
    return task_commands.run(args, _dispatch)


def _dispatch(client: Client, args: argparse.Namespace) -> None:
    s, timeout, as_json = client.system, client.timeout, args.json
    action = args.action
    if action == "register":
        request = system_pb2.RegisterRequest(instance_id=args.instance_id, roles=args.role or [])
        if args.max_tasks is not None:
            request.max_tasks = args.max_tasks
        registered = s.Register(request, timeout=timeout)
        handed = [t.id for t in registered.assigned_tasks]
        task_commands.print_message(
            registered,
            as_json,
            lambda: (
                f"registered {args.instance_id}"
                + (" (leader)" if registered.became_leader else "")
                + (f"; assigned tasks: {', '.join(handed)}" if handed else "")
            ),
        )
    elif action == "heartbeat":
        beat = s.Heartbeat(system_pb2.HeartbeatRequest(instance_id=args.instance_id), timeout=timeout)
        task_commands.print_message(
            beat,
            as_json,
            lambda: (
                f"{args.instance_id}: {'alive' if beat.alive else 'not alive'}"
                + (" (leader)" if beat.is_leader else "")
            ),
        )
    elif action == "unregister":
        gone = s.Unregister(system_pb2.UnregisterRequest(instance_id=args.instance_id), timeout=timeout)
        task_commands.print_message(
            gone,
            as_json,
            lambda: f"unregistered {args.instance_id}; tasks released: {gone.tasks_released}",
        )
    elif action == "list":
        instances = _all_instances(client)
        if as_json:
            print(json.dumps({"instances": instances}, sort_keys=True))
        else:
            rows = [
                [i["instanceId"], i["status"], str(i["heldTasks"]), str(i["maxTasks"]), ",".join(i["roles"])]
                for i in instances
            ]
            print(task_commands.table(["instance", "status", "held", "max", "roles"], rows))


def _all_instances(client: Client) -> list[dict[str, Any]]:
    """Every instance GetState knows, following its pages."""
    found: list[dict[str, Any]] = []
    token = ""
    while True:
        state = client.system.GetState(
            system_pb2.GetStateRequest(recent_events=0, page_token=token), timeout=client.timeout
        )
        for instance in state.instances:
            entry = json_format.MessageToDict(instance, always_print_fields_with_no_presence=True)
            found.append(entry)
        token = state.next_page_token
        if not token:
            return found


def add_parser(commands: Any) -> None:
    """The `instance` subcommand."""
    instance = commands.add_parser(
        "instance", help="register, heartbeat, unregister or list worker instances"
    )
    actions = instance.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="register (or re-register) a worker instance")
    register.add_argument("instance_id")
    register.add_argument("--max-tasks", type=int, help="tasks it may hold at once")
    register.add_argument("--role", action="append", help="a role it has (repeatable)")
    heartbeat = actions.add_parser("heartbeat", help="tell the server the instance is alive")
    heartbeat.add_argument("instance_id")
    unregister = actions.add_parser("unregister", help="remove it; its tasks go back to the queue")
    unregister.add_argument("instance_id")
    listing = actions.add_parser("list", help="the instances the server knows")
    for parser in (register, heartbeat, unregister, listing):
        task_commands.common_flags(parser)
