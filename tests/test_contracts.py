"""The Lua headers are the interface: parse them all and hold the code to them."""

from __future__ import annotations

import re

import pytest
import redis.asyncio as aioredis

from claudebench.api.status import STATUS_FOR_CODE
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.registry import default_lua_dir, load_scripts
from claudebench.scripts.results import ResultCode, ScriptContractError

SCRIPTS = load_scripts()
EXPECTED = {
    "TASK_CREATE", "TASK_CLAIM", "TASK_ASSIGN", "TASK_UPDATE", "TASK_COMPLETE", "TASK_RELEASE",
    "TASK_DELETE", "INSTANCE_REGISTER", "INSTANCE_HEARTBEAT",
}  # fmt: skip


def test_every_script_is_there_with_a_full_header() -> None:
    assert set(SCRIPTS) >= EXPECTED
    for spec in SCRIPTS.values():
        assert spec.path.stem.upper() == spec.name
        assert spec.keys, f"{spec.name} declares no KEYS"
        assert spec.args, f"{spec.name} declares no ARGV"
        assert ResultCode.OK in spec.codes
        assert "-- Events:" in spec.path.read_text()


def test_every_code_maps_to_one_grpc_status() -> None:
    used = set().union(*(spec.codes for spec in SCRIPTS.values()))
    assert used - {ResultCode.OK} <= set(STATUS_FOR_CODE)
    assert set(ResultCode) - {ResultCode.OK} == set(STATUS_FOR_CODE)


def _codes_returned_by_helpers() -> dict[str, set[str]]:
    """{helper function name: codes its body can return}, from lua/lib."""
    found: dict[str, set[str]] = {}
    for path in (default_lua_dir() / "lib").glob("*.lua"):
        for chunk in re.split(r"\n(?=local function )", path.read_text()):
            if m := re.match(r"local function (\w+)", chunk):
                found[m.group(1)] = set(re.findall(r"\{'([A-Z_]+)',", chunk))
    return found


def test_every_code_a_script_can_return_is_in_its_header() -> None:
    helpers = _codes_returned_by_helpers()
    for spec in SCRIPTS.values():
        body = spec.path.read_text()
        returned = set(re.findall(r"return \{'([A-Z_]+)'", body))
        for helper, codes in helpers.items():
            if f"{helper}(" in body:
                returned |= codes
        assert returned == {c.value for c in spec.codes}, spec.name


LUA_FILES = sorted(default_lua_dir().rglob("*.lua"))


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_no_scans_and_no_keys_built_inside_lua(path: object) -> None:
    from pathlib import Path

    assert isinstance(path, Path)
    code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
    assert not re.search(r"redis\.call\(\s*'(KEYS|SCAN)'", code, re.IGNORECASE)
    # The key argument of a call is a local taken from KEYS, never a concatenation.
    for call in re.finditer(r"redis\.call\(\s*'[A-Za-z]+'\s*,\s*([^,)]+)", code):
        assert ".." not in call.group(1), f"{path.name}: key built in Lua: {call.group(0)}"
    assert "TIME" not in re.findall(r"redis\.call\(\s*'([A-Z]+)'", code), "pass the clock in ARGV"


async def test_executor_refuses_calls_outside_the_header(
    executor: ScriptExecutor, redis_client: aioredis.Redis
) -> None:
    with pytest.raises(ScriptContractError, match="KEYS must be"):
        await executor.run("TASK_DELETE", keys={"task": "cb:task:x"}, args={})
    with pytest.raises(ScriptContractError, match="no variable KEYS tail"):
        await executor.run(
            "INSTANCE_HEARTBEAT",
            keys={"instance": "a", "liveness": "b", "leader": "c"},
            args={"instance_id": "x", "now_ms": 1, "ttl_ms": 1},
            extra_keys=["d"],
        )
    assert await redis_client.dbsize() == 0
