"""`claudebench scripts list|load|verify`: the seed's script deployment process."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import grpc

from claudebench.commands.connection import open_channel
from claudebench.redis_connect import connect
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.registry import load_scripts, script_version
from claudebench.v1 import system_pb2, system_pb2_grpc


def list_scripts(lua_dir: Path) -> int:
    scripts = load_scripts(lua_dir)
    for name, spec in sorted(scripts.items()):
        print(f"{name:<28} {spec.sha}")
    print(f"version {script_version(scripts)}")
    return 0


def load_into(lua_dir: Path, redis_url: str) -> int:
    """SCRIPT LOAD every script into the Redis at redis_url (fails on a compile error)."""

    async def run() -> dict[str, str]:
        client = connect(redis_url, timeout_s=5.0, max_connections=4)
        try:
            return await ScriptExecutor(client, load_scripts(lua_dir)).load_all()
        finally:
            await client.aclose()

    for name, sha in sorted(asyncio.run(run()).items()):
        print(f"{name:<28} {sha}")
    return 0


def verify(lua_dir: Path, args: argparse.Namespace) -> int:
    """0 when the running server (args.server) runs exactly these scripts, 1 (saying both versions,
    or the server's refusal) otherwise."""
    server = args.server
    local = script_version(load_scripts(lua_dir))
    with open_channel(args) as channel:
        try:
            state = system_pb2_grpc.SystemServiceStub(channel).GetState(
                system_pb2.GetStateRequest(recent_events=0, page_size=1), timeout=10
            )
        except grpc.RpcError as exc:
            print(f"{server}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    if state.script_version != local:
        print(
            f"{server} runs script version {state.script_version}; {lua_dir} holds {local}", file=sys.stderr
        )
        return 1
    print(f"{server} runs script version {local}, the same as {lua_dir}")
    return 0
