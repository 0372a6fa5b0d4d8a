"""Hook bookkeeping on Redis: HOOK_VALIDATE, HOOK_PROCESS_RESULT and the stored configuration."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, cast

from claudebench.scripts.results import ScriptResult
from claudebench.store.base import Store
from claudebench.store.errors import ok_payload

LOG_CAP = 100
LOG_TTL_MS = 24 * 3600 * 1000
LOG_RESULT_CHARS = 1000


@dataclass(frozen=True, slots=True)
class HookSettings:
    rate_limit: int = 100
    rate_window_ms: int = 60_000
    error_window_ms: int = 60_000
    error_threshold: int = 5
    cooldown_ms: int = 30_000
    system_event_retention: int = 10_000


class HookStore(Store[HookSettings]):
    """The Redis side of PreToolUse, PostToolUse and ConfigureHook."""

    async def validate(self, tool: str, instance_id: str) -> ScriptResult:
        """Circuit, rate limit, configuration and stats. OK carries {"config", "circuit"}; the
        CIRCUIT_OPEN and RATE_LIMITED results carry the reason to deny with."""
        now = self._clock()
        window_ms = self._settings.rate_window_ms
        window = now // window_ms
        k = self._keys
        return await self._run(
            "HOOK_VALIDATE",
            keys={
                "circuit": k.hook_circuit(tool),
                "config": k.hook_config(tool),
                "instance_rate": k.hook_rate(instance_id, window),
                "tool_rate": k.hook_rate(instance_id, window, tool),
                "stats": k.hook_stats(tool),
            },
            args={
                "tool": tool,
                "instance_id": instance_id,
                "now_ms": now,
                "window_ms": window_ms,
                "default_limit": self._settings.rate_limit,
                "window_end_ms": (window + 1) * window_ms,
            },
        )

    async def process_result(self, tool: str, success: bool, entry: dict[str, Any]) -> dict[str, Any]:
        """Log, count, and move the tool's circuit. Returns {"errors", "circuit"}."""
        k = self._keys
        s = self._settings
        result = await self._run(
            "HOOK_PROCESS_RESULT",
            keys={
                "circuit": k.hook_circuit(tool),
                "errors": k.hook_errors(tool),
                "log": k.hook_log(tool),
                "stats": k.hook_stats(tool),
                "system_events": k.system_events,
            },
            args={
                "tool": tool,
                "call_id": uuid.uuid4().hex,
                "success": "1" if success else "0",
                "now_ms": self._clock(),
                "window_ms": s.error_window_ms,
                "threshold": s.error_threshold,
                "cooldown_ms": s.cooldown_ms,
                "log_entry": json.dumps(entry, separators=(",", ":"))[: LOG_RESULT_CHARS * 2],
                "log_cap": LOG_CAP,
                "log_ttl_ms": LOG_TTL_MS,
                "system_maxlen": s.system_event_retention,
            },
        )
        return cast(dict[str, Any], json.loads(ok_payload(result)))

    async def store_config(self, tool: str, config: dict[str, Any]) -> None:
        # One key, one command: nothing to make atomic with it.
        await self._client.set(self._keys.hook_config(tool), json.dumps(config, separators=(",", ":")))
