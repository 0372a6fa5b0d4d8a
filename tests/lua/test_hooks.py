"""HOOK_VALIDATE and HOOK_PROCESS_RESULT: rate-limit windows, configuration, the circuit breaker."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from claudebench.keys import Keyspace
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.results import ResultCode
from claudebench.store.hooks import HookSettings, HookStore
from tests.invariants import entries
from tests.lua.conftest import FakeClock


@pytest.fixture
def hooks(
    executor: ScriptExecutor, redis_client: aioredis.Redis, keys: Keyspace, clock: FakeClock
) -> HookStore:
    settings = HookSettings(
        rate_limit=3, rate_window_ms=1000, error_window_ms=10_000, error_threshold=2, cooldown_ms=5000
    )
    return HookStore(executor, redis_client, keys, settings, clock)


async def test_rate_limit_per_instance_and_window(hooks: HookStore, clock: FakeClock) -> None:
    clock.now = 1_700_000_000_000  # the start of a window
    codes = [(await hooks.validate("Bash", "w1")).code for _ in range(5)]
    other = await hooks.validate("Bash", "w2")
    limited = await hooks.validate("Bash", "w1")
    clock.advance(1000)
    next_window = await hooks.validate("Bash", "w1")

    assert codes == [ResultCode.OK] * 3 + [ResultCode.RATE_LIMITED] * 2
    assert other.code is ResultCode.OK
    assert limited.payload == "rate limit exceeded: 3 calls per 1 s for instance w1; the window resets in 1 s"
    assert next_window.code is ResultCode.OK


async def test_configuration_is_returned_and_sets_its_own_limit(
    hooks: HookStore, clock: FakeClock, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await hooks.store_config("Bash", {"rateLimit": 1, "rules": {"privilege_stripping": False}})
    clock.now = 1_700_000_000_000
    first = await hooks.validate("Bash", "w1")
    second = await hooks.validate("Bash", "w1")
    other_tool = await hooks.validate("Write", "w1")

    assert json.loads(first.payload) == {
        "config": {"rateLimit": 1, "rules": {"privilege_stripping": False}},
        "circuit": "closed",
    }
    assert second.code is ResultCode.RATE_LIMITED
    assert other_tool.code is ResultCode.OK
    assert await redis_client.hgetall(keys.hook_stats("Bash")) == {"validated": "1", "rateLimited": "1"}


async def test_circuit_opens_half_opens_and_closes(
    hooks: HookStore, clock: FakeClock, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    for _ in range(2):
        assert (await hooks.process_result("Bash", False, {"n": 1}))["circuit"] == "closed"
    opened = await hooks.process_result("Bash", False, {"n": 1})
    denied = await hooks.validate("Bash", "w1")
    assert opened == {"errors": 3, "circuit": "open"}
    assert denied.code is ResultCode.CIRCUIT_OPEN
    assert denied.payload == "circuit open for tool Bash after 3 errors; it half-opens in 5 s"
    assert (await hooks.validate("Write", "w1")).code is ResultCode.OK  # per tool

    clock.advance(5000)
    probe = await hooks.validate("Bash", "w1")
    assert json.loads(probe.payload)["circuit"] == "half_open"
    reopened = await hooks.process_result("Bash", False, {})
    assert reopened["circuit"] == "open"
    clock.advance(5000)
    closed = await hooks.process_result("Bash", True, {})
    assert closed == {"errors": 0, "circuit": "closed"}
    assert (await hooks.validate("Bash", "w1")).code is ResultCode.OK

    alerts = [f for _, f in await entries(redis_client, keys.system_events)]
    assert [a["type"] for a in alerts] == ["hook.circuit_opened", "hook.circuit_opened"]
    assert json.loads(alerts[0]["data"])["errorCount"] == 3


async def test_errors_outside_the_window_do_not_count(hooks: HookStore, clock: FakeClock) -> None:
    for _ in range(2):
        await hooks.process_result("Bash", False, {})
    clock.advance(10_001)
    assert await hooks.process_result("Bash", False, {}) == {"errors": 1, "circuit": "closed"}


async def test_log_is_capped_with_a_ttl(
    hooks: HookStore, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    for i in range(120):
        await hooks.process_result("Bash", True, {"i": i})
    assert await redis_client.llen(keys.hook_log("Bash")) == 100
    newest = await redis_client.lindex(keys.hook_log("Bash"), 0)
    assert newest is not None
    assert json.loads(newest) == {"i": 119}
    assert await redis_client.pttl(keys.hook_log("Bash")) > 0
    assert await redis_client.hget(keys.hook_stats("Bash"), "executions") == "120"
