"""The `claudebench` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from claudebench.config import from_environment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claudebench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--listen", help="host:port to serve on (default 127.0.0.1:50051)")
    serve.add_argument("--redis-url", help="Redis to use; without one an embedded redis-server is started")
    serve.add_argument("--data-dir", type=Path, help="embedded Redis data (default .claudebench)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = from_environment().with_overrides(
        {
            "listen": args.listen,
            "redis_url": args.redis_url,
            "data_dir": args.data_dir,
            "log_level": args.log_level,
        }
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        from claudebench.server import serve

        asyncio.run(serve(settings))
