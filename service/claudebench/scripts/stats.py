"""Per-script call counts and times, aggregated in process and flushed to `cb:metrics:lua` on an
interval, so recording costs no Redis round trip per call."""

from __future__ import annotations

from dataclasses import dataclass

from claudebench.redis_connect import REDIS_FAULTS, RedisClient


@dataclass
class _Totals:
    calls: int = 0
    total_ms: float = 0.0
    errors: int = 0


class ScriptStats:
    """Totals since the last flush, per script name."""

    def __init__(self) -> None:
        self._pending: dict[str, _Totals] = {}

    def record(self, name: str, elapsed_ms: float, error: bool) -> None:
        totals = self._pending.setdefault(name, _Totals())
        totals.calls += 1
        totals.total_ms += elapsed_ms
        totals.errors += int(error)

    def calls(self, name: str) -> int:
        """Calls of the script since the last flush."""
        totals = self._pending.get(name)
        return totals.calls if totals else 0

    async def flush(self, client: RedisClient, key: str) -> None:
        """Add the pending totals to the hash (fields {script}:calls, :totalMs, :errors). On a Redis
        failure they are kept and added by the next flush."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with client.pipeline(transaction=True) as pipe:
                for name, totals in pending.items():
                    pipe.hincrby(key, f"{name}:calls", totals.calls)
                    pipe.hincrbyfloat(key, f"{name}:totalMs", round(totals.total_ms, 3))
                    pipe.hincrby(key, f"{name}:errors", totals.errors)
                await pipe.execute()
        except REDIS_FAULTS:
            for name, totals in pending.items():
                merged = self._pending.setdefault(name, _Totals())
                merged.calls += totals.calls
                merged.total_ms += totals.total_ms
                merged.errors += totals.errors
            raise
