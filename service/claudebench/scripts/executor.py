"""Runs the Lua scripts: EVALSHA, NOSCRIPT reload, contract checks, one CLIENT span per call."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode
from redis.exceptions import NoScriptError

from claudebench.redis_connect import REDIS_FAULTS, RedisClient, server_address
from claudebench.scripts.registry import ScriptSpec
from claudebench.scripts.results import ResultCode, ScriptContractError, ScriptResult
from claudebench.scripts.stats import ScriptStats

log = logging.getLogger(__name__)
_CODES = frozenset(code.value for code in ResultCode)
_FAILURES: tuple[type[Exception], ...] = (*REDIS_FAULTS, ScriptContractError)

ArgValue = str | int


def _unsampled_parent() -> bool:
    """Inside a trace that is not sampled: a script span would be a child nobody records (the
    default parent-based samplers follow the parent), so none is made. Calls outside any trace
    (background jobs) still get their own root span, sampled on its own."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


class ScriptExecutor:
    """Calls scripts by name with named KEYS and ARGV, checked against each script's header."""

    def __init__(
        self,
        client: RedisClient,
        scripts: Mapping[str, ScriptSpec],
        tracer: trace.Tracer | None = None,
        duration: metrics.Histogram | None = None,
    ) -> None:
        self._client = client
        self._scripts = dict(scripts)
        # None: tracing is off, and the span machinery is skipped altogether on this hot path.
        self._tracer = tracer
        self._duration = duration
        self.stats = ScriptStats()
        self._server_address, self._server_port = server_address(client)
        # Built once: the SDK copies a span's attributes, so one dict per script serves every call.
        self._span_attributes: dict[str, dict[str, str | int]] = {
            name: {
                "db.system.name": "redis",
                "db.operation.name": "EVALSHA",
                "db.stored_procedure.name": name,
                "db.redis.script_sha": spec.sha,
                "server.address": self._server_address,
                "server.port": self._server_port,
            }
            for name, spec in self._scripts.items()
        }

    @property
    def scripts(self) -> Mapping[str, ScriptSpec]:
        return self._scripts

    async def load_all(self) -> dict[str, str]:
        """SCRIPT LOAD every script; a compile error fails here, at start-up. Returns name -> SHA."""
        loaded: dict[str, str] = {}
        for name, spec in self._scripts.items():
            sha = await self._client.script_load(spec.source)
            if sha != spec.sha:
                raise ScriptContractError(f"{name}: Redis computed SHA {sha}, expected {spec.sha}")
            loaded[name] = sha
        return loaded

    async def run(
        self,
        name: str,
        keys: Mapping[str, str],
        args: Mapping[str, ArgValue],
        extra_keys: Sequence[str] = (),
        extra_args: Sequence[ArgValue] = (),
    ) -> ScriptResult:
        """Run script `name`. `keys` and `args` must name exactly the header's KEYS and ARGV."""
        spec = self._scripts[name]
        key_list = self._ordered(spec, "KEYS", spec.keys, keys, spec.variadic_keys, extra_keys)
        arg_list = self._ordered(spec, "ARGV", spec.args, args, spec.variadic_args, extra_args)
        if self._tracer is None or _unsampled_parent():
            return await self._call(spec, key_list, arg_list, None)
        # Domain outcomes (NOT_FOUND, ...) are results, not span errors; Redis faults and contract
        # bugs are errors, recorded with error.type. The span is not made the current one: nothing
        # runs under it, and attaching it to the context would cost a third of the span's price.
        span = self._tracer.start_span(
            f"EVALSHA {name}",
            kind=trace.SpanKind.CLIENT,
            attributes=self._span_attributes[name],
            record_exception=False,
            set_status_on_exception=False,
        )
        try:
            result = await self._call(spec, key_list, arg_list, span)
            span.set_attribute("claudebench.script.result", result.code.value)
            return result
        except _FAILURES as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            raise
        finally:
            span.end()

    async def _call(
        self, spec: ScriptSpec, keys: list[ArgValue], args: list[ArgValue], span: trace.Span | None
    ) -> ScriptResult:
        """EVALSHA (reloading on NOSCRIPT), timed into the stats and the histogram."""
        started = time.perf_counter()
        outcome = "error"
        try:
            try:
                reply = await self._client.evalsha(spec.sha, len(keys), *keys, *args)
            except NoScriptError:
                # Redis restarted, failed over or flushed its script cache: load, retry once.
                if span is not None:
                    span.add_event("NOSCRIPT: script reloaded")
                    span.set_attribute("claudebench.script.reloaded", True)
                log.info("script %s was missing from Redis; reloading it", spec.name)
                await self._client.script_load(spec.source)
                reply = await self._client.evalsha(spec.sha, len(keys), *keys, *args)
            result = self._parse(spec, reply)
            outcome = result.code.value
            return result
        except _FAILURES as exc:
            outcome = type(exc).__name__
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.stats.record(spec.name, elapsed_ms, error=outcome not in _CODES)
            if self._duration is not None:
                self._duration.record(elapsed_ms, {"script": spec.name, "result": outcome})

    @staticmethod
    def _ordered(
        spec: ScriptSpec,
        kind: str,
        names: tuple[str, ...],
        given: Mapping[str, ArgValue],
        variadic: str | None,
        extra: Sequence[ArgValue],
    ) -> list[ArgValue]:
        if set(given) != set(names):
            raise ScriptContractError(
                f"{spec.name}: {kind} must be {list(names)}, the call gave {sorted(given)}"
            )
        if extra and variadic is None:
            raise ScriptContractError(f"{spec.name}: takes no variable {kind} tail")
        return [given[n] for n in names] + list(extra)

    @staticmethod
    def _parse(spec: ScriptSpec, reply: object) -> ScriptResult:
        if not (isinstance(reply, list) and len(reply) == 2 and all(isinstance(x, str) for x in reply)):
            raise ScriptContractError(f"{spec.name}: reply {reply!r} is not {{code, payload}}")
        try:
            code = ResultCode(reply[0])
        except ValueError:
            raise ScriptContractError(f"{spec.name}: unknown result code {reply[0]!r}") from None
        if code not in spec.codes:
            raise ScriptContractError(f"{spec.name}: code {code} is not in its header")
        return ScriptResult(code, reply[1])
