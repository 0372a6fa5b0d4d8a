"""HookService through real stubs: exact rate limits under concurrency, the circuit, configuration,
and a fail-closed answer when Redis is gone."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from claudebench.config import Settings
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.server import ClaudebenchServer
from claudebench.v1 import hooks_pb2 as pb
from claudebench.v1 import hooks_pb2_grpc
from tests.api.helpers import close_channel, rpc_error

Hooks = hooks_pb2_grpc.HookServiceStub


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, hook_error_threshold=3, hook_circuit_cooldown_s=1)


@pytest.fixture
def hooks(channel: grpc.aio.Channel) -> Hooks:
    return hooks_pb2_grpc.HookServiceStub(channel)


def params(value: Any) -> struct_pb2.Value:
    return json_format.ParseDict(value, struct_pb2.Value())


async def test_exactly_the_limit_is_allowed_under_concurrency(server: ClaudebenchServer) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(5)]
    stubs = [hooks_pb2_grpc.HookServiceStub(c) for c in channels]
    request = pb.PreToolUseRequest(tool="Bash", params=params({"command": "ls"}), instance_id="busy")
    try:
        # Stay inside one 60 s window: start right after a boundary if this one is nearly over.
        if time.time() % 60 > 50:
            await asyncio.sleep(60 - time.time() % 60 + 0.1)
        replies = await asyncio.gather(*(stubs[i % 5].PreToolUse(request) for i in range(150)))
        other = await stubs[0].PreToolUse(
            pb.PreToolUseRequest(tool="Bash", params=params({"command": "ls"}), instance_id="calm")
        )
    finally:
        for channel in channels:
            await close_channel(channel)
    allowed = [r for r in replies if r.allow]
    refused = [r for r in replies if not r.allow]
    assert len(allowed) == 100
    assert all(r.reason.startswith("rate limit exceeded: 100 calls per 60 s") for r in refused)
    assert other.allow


async def test_rules_through_the_rpc(hooks: Hooks) -> None:
    blocked = await hooks.PreToolUse(
        pb.PreToolUseRequest(tool="Bash", params=params({"command": "ls; rm -rf /"}), instance_id="w1")
    )
    rewritten = await hooks.PreToolUse(
        pb.PreToolUseRequest(tool="Bash", params=params({"command": "sudo make"}), instance_id="w1")
    )
    assert (blocked.allow, blocked.reason.startswith("dangerous command blocked")) == (False, True)
    assert rewritten.allow
    assert json_format.MessageToDict(rewritten.modified) == {"command": "make"}


async def test_failures_open_the_circuit_until_a_success_closes_it(hooks: Hooks) -> None:
    call = pb.PreToolUseRequest(tool="flaky", params=params("x"), instance_id="w1")
    for n in range(4):
        done = await hooks.PostToolUse(
            pb.PostToolUseRequest(
                tool="flaky", instance_id="w1", result=params({"error": "boom"}), success=False
            )
        )
        assert done.error_count == n + 1
    denied = await hooks.PreToolUse(call)
    assert not denied.allow
    assert denied.reason.startswith("circuit open for tool flaky")

    await asyncio.sleep(1.1)  # the cool-down
    assert (await hooks.PreToolUse(call)).allow  # half-open: the probe goes through
    await hooks.PostToolUse(
        pb.PostToolUseRequest(tool="flaky", instance_id="w1", result=params("ok"), success=True)
    )
    assert (await hooks.PreToolUse(call)).allow


async def test_configuration_round_trip_and_refusals(hooks: Hooks) -> None:
    config = struct_pb2.Struct()
    config.update(
        {"rules": {"dangerous_operations": False}, "denyPatterns": ["curl .*\\| *sh"], "rateLimit": 5}
    )
    stored = await hooks.ConfigureHook(pb.ConfigureHookRequest(tool="Bash", config=config))
    assert json_format.MessageToDict(stored.config) == {
        "rules": {"dangerous_operations": False},
        "denyPatterns": ["curl .*\\| *sh"],
        "rateLimit": 5,
    }
    now_allowed = await hooks.PreToolUse(
        pb.PreToolUseRequest(tool="Bash", params=params({"command": "rm -rf build"}), instance_id="w1")
    )
    custom = await hooks.PreToolUse(
        pb.PreToolUseRequest(tool="Bash", params=params({"command": "curl x | sh"}), instance_id="w1")
    )
    assert now_allowed.allow
    assert not custom.allow

    refusals: list[tuple[dict[str, Any], str]] = [
        ({"surprise": 1}, "unknown hook configuration keys"),
        ({"rules": {"nope": True}}, "unknown rules"),
        ({"denyPatterns": ["("]}, "not a valid regular expression"),
        ({"rateLimit": 0}, "rateLimit must be between 1"),
        ({"rateLimit": 2.5}, "whole number"),
        ({"enabled": "yes"}, "enabled must be true or false"),
    ]
    for bad, message in refusals:
        raw = struct_pb2.Struct()
        raw.update(bad)
        assert message in await rpc_error(
            hooks.ConfigureHook(pb.ConfigureHookRequest(tool="Bash", config=raw)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    await rpc_error(
        hooks.ConfigureHook(pb.ConfigureHookRequest(tool="a b")), grpc.StatusCode.INVALID_ARGUMENT
    )
    await rpc_error(
        hooks.PreToolUse(pb.PreToolUseRequest(tool="Bash", params=params("x"))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_without_redis_the_hook_fails_closed(tmp_path: Path) -> None:
    private = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    settings = Settings(listen="127.0.0.1:0", redis_url=private.url, redis_timeout_s=1.0)
    app = ClaudebenchServer(settings, private.url)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        private.stop()
        started = time.monotonic()
        reply = await hooks_pb2_grpc.HookServiceStub(channel).PreToolUse(
            pb.PreToolUseRequest(tool="Bash", params=params("ls"), instance_id="w1"), timeout=10
        )
        assert time.monotonic() - started < 5
        assert not reply.allow
        assert "fail-closed" in reply.reason
    finally:
        await close_channel(channel)
        await app.stop(grace_s=0)
