"""claudebench: a gRPC service that coordinates distributed work on Redis (tasks, worker instances,
task events). `claudebench serve` runs the service; the other commands are clients of a running one."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine
from importlib.metadata import version
from pathlib import Path
from typing import Any

from claudebench.config import from_environment
from claudebench.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claudebench", description=__doc__)
    parser.add_argument("--version", action="version", version=f"claudebench {version('claudebench')}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--listen", help="host:port to serve on (default 127.0.0.1:50051)")
    serve.add_argument("--redis-url", help="Redis to use; without one an embedded redis-server is started")
    serve.add_argument(
        "--redis-cluster",
        action="store_true",
        default=None,
        help="--redis-url names a node of a Redis Cluster (same as a redis+cluster:// URL)",
    )
    serve.add_argument(
        "--redis-wait", type=float, help="seconds to wait for Redis to answer at start (default 30)"
    )
    serve.add_argument(
        "--namespace", help="tenant/queue whose keys are cb:{namespace}:... (one cluster slot)"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="embedded Redis data (default $XDG_DATA_HOME/claudebench, else ~/.local/share/claudebench)",
    )
    serve.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, help="DEBUG, INFO, WARNING or ERROR"
    )
    serve.add_argument("--log-format", choices=("text", "json"), help="log lines as text or JSON")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (default 1; e.g. one per core)"
    )
    serve.add_argument(
        "--scheduler-interval",
        type=float,
        help="seconds between runs of the lifecycle scheduler (due tasks, leases, retention; default 1)",
    )
    serve.add_argument(
        "--default-task-timeout",
        type=float,
        help="seconds a holder has per attempt for tasks created without a timeout (default 0: none)",
    )
    serve.add_argument("--metrics-listen", help="host:port for a Prometheus scrape endpoint (/metrics)")
    # Set by a --workers parent on the processes it starts: they share its port.
    serve.add_argument("--sibling-of", type=int, help=argparse.SUPPRESS)
    serve.add_argument(
        "--http-listen", help="host:port of the dashboard and its JSON API (default 127.0.0.1:8080)"
    )
    serve.add_argument(
        "--no-http", dest="http_enabled", action="store_false", default=None, help="serve no dashboard"
    )

    from claudebench.commands import connection

    health = commands.add_parser(
        "health", help="ask a server's grpc.health.v1 service; exit 0 when SERVING (a container probe)"
    )
    health.add_argument("--server", default="127.0.0.1:50051", help="host:port of a claudebench server")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    connection.add_flags(health)

    from claudebench.commands.tasks import add_parsers

    add_parsers(commands)
    from claudebench.commands import hook, instances, queues, schedules

    instances.add_parser(commands)
    queues.add_parser(commands)
    schedules.add_parser(commands)

    hook.add_parser(commands)
    scripts = commands.add_parser("scripts", help="list, load or verify the Lua scripts")
    scripts.add_argument("action", choices=("list", "load", "verify"))
    scripts.add_argument("--redis-url", help="load: the Redis to load the scripts into")
    scripts.add_argument("--server", default="127.0.0.1:50051", help="verify: a running server")
    connection.add_flags(scripts)

    watch = commands.add_parser("watch", help="print task events as they come")
    watch.add_argument("--server", default="127.0.0.1:50051", help="host:port of a claudebench server")
    watch.add_argument(
        "--after",
        default="",
        help="'' (default): only new events; '0': everything retained; an event id: after it",
    )
    watch.add_argument("--type", help="comma-separated event types, e.g. created,completed")
    watch.add_argument("--task", help="only this task's events")
    watch.add_argument("--instance", help="only events caused by this instance")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    watch.add_argument("--limit", type=int, help="exit after printing this many events")
    connection.add_flags(watch)
    return parser


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def check_listen(listen: str) -> None:
    """SystemExit (one line) unless `listen` is host:port with a port in 0..65535."""
    host, colon, port = listen.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise SystemExit(
            f"claudebench: error: --listen must be host:port (e.g. 127.0.0.1:50051), not {listen!r}"
        )
    if int(port) > 65535:
        raise SystemExit(f"claudebench: error: --listen port {port} is out of range (0-65535)")


def run_loop(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run the server on uvloop (the default where it is installed) or on asyncio's own loop."""
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            sys.exit("event_loop=uvloop, but uvloop is not installed (set CLAUDEBENCH_EVENT_LOOP=asyncio)")
        uvloop.run(main)
    elif event_loop == "asyncio":
        asyncio.run(main)
    else:
        sys.exit(f"CLAUDEBENCH_EVENT_LOOP must be uvloop or asyncio, not {event_loop!r}")


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    except BrokenPipeError:
        # The reader went away (`claudebench state | head -1`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
    except KeyboardInterrupt:
        sys.exit(130)


def _main(argv: list[str] | None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    from claudebench.client.channel import ChannelError

    try:
        _run(parser, args)
    except ChannelError as exc:  # a TLS file that cannot be read, a token in plain text over a network
        sys.exit(f"claudebench: error: {exc}")


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command in ("task", "state", "metrics"):
        from claudebench.commands.tasks import run

        sys.exit(run(args))
    if args.command == "instance":
        from claudebench.commands.instances import run as run_instance

        sys.exit(run_instance(args))
    if args.command == "queue":
        from claudebench.commands.queues import run as run_queue

        sys.exit(run_queue(args))
    if args.command == "schedule":
        from claudebench.commands.schedules import run as run_schedule

        sys.exit(run_schedule(args))
    if args.command == "hook":
        from claudebench.commands.hook import run as run_hook

        sys.exit(run_hook(args))
    if args.command == "health":
        from claudebench.commands.health import probe

        sys.exit(probe(args))
    if args.command == "scripts":
        from claudebench.commands import scripts as script_commands

        lua_dir = from_environment().lua_dir
        if args.action == "list":
            sys.exit(script_commands.list_scripts(lua_dir))
        if args.action == "load":
            if not args.redis_url:
                parser.error("scripts load needs --redis-url")
            sys.exit(script_commands.load_into(lua_dir, args.redis_url))
        sys.exit(script_commands.verify(lua_dir, args))
    if args.command == "watch":
        from claudebench.commands import connection
        from claudebench.commands.watch import event_types, watch

        try:
            types = event_types(args.type)
        except ValueError as exc:
            parser.error(str(exc))
        try:
            sys.exit(
                watch(
                    args.server,
                    args.after,
                    types,
                    args.task,
                    args.instance,
                    args.json,
                    max_events=args.limit,
                    security=connection.security(args),
                )
            )
        except KeyboardInterrupt:
            sys.exit(130)
    settings = from_environment().with_overrides(
        {
            "listen": args.listen,
            "redis_url": args.redis_url,
            "redis_cluster": args.redis_cluster,
            "redis_wait_s": getattr(args, "redis_wait", None),
            "namespace": args.namespace,
            "data_dir": args.data_dir,
            "log_level": args.log_level,
            "log_format": args.log_format,
            "metrics_listen": args.metrics_listen,
            "workers": args.workers,
            "scheduler_interval_s": getattr(args, "scheduler_interval", None),
            "default_task_timeout_s": getattr(args, "default_task_timeout", None),
            "http_listen": args.http_listen,
            "http_enabled": args.http_enabled,
        }
    )
    if settings.log_level.upper() not in LOG_LEVELS:
        parser.error(f"log level must be one of {', '.join(LOG_LEVELS)}, not {settings.log_level!r}")
    check_listen(settings.listen)
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        from claudebench.serving import serve

        run_loop(serve(settings, sibling=args.sibling_of is not None), settings.event_loop)
