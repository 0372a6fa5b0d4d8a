"""The `claudebench` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from claudebench.config import from_environment
from claudebench.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claudebench", description=__doc__)
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
        "--namespace", help="tenant/queue whose keys are cb:{namespace}:... (one cluster slot)"
    )
    serve.add_argument("--data-dir", type=Path, help="embedded Redis data (default .claudebench)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    serve.add_argument("--log-format", choices=("text", "json"), help="log lines as text or JSON")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (default 1; e.g. one per core)"
    )
    serve.add_argument("--metrics-listen", help="host:port for a Prometheus scrape endpoint (/metrics)")
    serve.add_argument(
        "--http-listen", help="host:port of the dashboard and its JSON API (default 127.0.0.1:8080)"
    )
    serve.add_argument(
        "--no-http", dest="http_enabled", action="store_false", default=None, help="serve no dashboard"
    )

    health = commands.add_parser(
        "health", help="ask a server's grpc.health.v1 service; exit 0 when SERVING (a container probe)"
    )
    health.add_argument("--server", default="127.0.0.1:50051", help="host:port of a claudebench server")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")

    from claudebench.commands.tasks import add_parsers

    add_parsers(commands)
    scripts = commands.add_parser("scripts", help="list, load or verify the Lua scripts")
    scripts.add_argument("action", choices=("list", "load", "verify"))
    scripts.add_argument("--redis-url", help="load: the Redis to load the scripts into")
    scripts.add_argument("--server", default="127.0.0.1:50051", help="verify: a running server")

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
    return parser


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
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("task", "state", "metrics"):
        from claudebench.commands.tasks import run

        sys.exit(run(args))
    if args.command == "health":
        from claudebench.commands.health import probe

        sys.exit(probe(args.server, args.timeout))
    if args.command == "scripts":
        from claudebench.commands import scripts as script_commands

        lua_dir = from_environment().lua_dir
        if args.action == "list":
            sys.exit(script_commands.list_scripts(lua_dir))
        if args.action == "load":
            if not args.redis_url:
                parser.error("scripts load needs --redis-url")
            sys.exit(script_commands.load_into(lua_dir, args.redis_url))
        sys.exit(script_commands.verify(lua_dir, args.server))
    if args.command == "watch":
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
                )
            )
        except KeyboardInterrupt:
            sys.exit(130)
    settings = from_environment().with_overrides(
        {
            "listen": args.listen,
            "redis_url": args.redis_url,
            "redis_cluster": args.redis_cluster,
            "namespace": args.namespace,
            "data_dir": args.data_dir,
            "log_level": args.log_level,
            "log_format": args.log_format,
            "metrics_listen": args.metrics_listen,
            "workers": args.workers,
            "http_listen": args.http_listen,
            "http_enabled": args.http_enabled,
        }
    )
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        from claudebench.server import serve

        run_loop(serve(settings), settings.event_loop)
