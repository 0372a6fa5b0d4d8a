"""Runs the Lua scripts: EVALSHA, NOSCRIPT reload, contract checks, one CLIENT span per call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from claudebench.redis_connect import REDIS_FAULTS, RedisClient, server_address
from claudebench.scripts.registry import ScriptSpec
from claudebench.scripts.results import ResultCode, ScriptContractError, ScriptResult
from claudebench.scripts.stats import ScriptStats

log = logging.getLogger(__name__)
_CODES = frozenset(code.value for code in ResultCode)
_FAILURES: tuple[type[Exception], ...] = (*REDIS_FAULTS, ScriptContractError)

ArgValue = str | int


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One call of a script by name, as ScriptExecutor.run takes it."""

    name: str
    keys: Mapping[str, str]
    args: Mapping[str, ArgValue]
    extra_keys: Sequence[str] = ()
    extra_args: Sequence[ArgValue] = ()


def _unsampled_parent() -> bool:
    """Inside a trace that is not sampled: a script span would be a child nobody records (the
    default parent-based samplers follow the parent), so none is made. Calls outside any trace
    (background jobs) still get their own root span, sampled on its own."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


def _failed(spans: Sequence[trace.Span], exc: Exception) -> None:
    for span in spans:
        span.set_attribute("error.type", type(exc).__name__)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))


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
        [span] = self._spans((spec,))
        try:
            result = await self._call(spec, key_list, arg_list, span)
            span.set_attribute("claudebench.script.result", result.code.value)
            return result
        except _FAILURES as exc:
            _failed((span,), exc)
            raise
        finally:
            span.end()

    async def run_together(self, calls: Sequence[ScriptCall]) -> list[ScriptResult]:
        """Run independent scripts in one round trip (a pipeline of EVALSHAs, not a transaction:
        each script is atomic on its own, and none may depend on another's outcome). Results in
        the order of `calls`; the first Redis fault or contract error is raised."""
        specs = [self._scripts[call.name] for call in calls]
        ordered = [
            (
                self._ordered(spec, "KEYS", spec.keys, call.keys, spec.variadic_keys, call.extra_keys),
                self._ordered(spec, "ARGV", spec.args, call.args, spec.variadic_args, call.extra_args),
            )
            for spec, call in zip(specs, calls, strict=True)
        ]
        if self._tracer is None or _unsampled_parent():
            return await self._call_many(specs, ordered, [None] * len(specs))
        spans = self._spans(specs)
        try:
            results = await self._call_many(specs, ordered, spans)
            for span, result in zip(spans, results, strict=True):
                span.set_attribute("claudebench.script.result", result.code.value)
            return results
        except _FAILURES as exc:
            _failed(spans, exc)
            raise
        finally:
            for span in spans:
                span.end()

    def _spans(self, specs: Sequence[ScriptSpec]) -> list[trace.Span]:
        """One CLIENT span per script call. Domain outcomes (NOT_FOUND, ...) are results, not span
        errors; Redis faults and contract bugs are errors, recorded with error.type. A span is not
        made the current one: nothing runs under it, and attaching it to the context would cost a
        third of the span's price."""
        assert self._tracer is not None
        return [
            self._tracer.start_span(
                f"EVALSHA {spec.name}",
                kind=trace.SpanKind.CLIENT,
                attributes=self._span_attributes[spec.name],
                record_exception=False,
                set_status_on_exception=False,
            )
            for spec in specs
        ]

    async def _call(
        self, spec: ScriptSpec, keys: list[ArgValue], args: list[ArgValue], span: trace.Span | None
    ) -> ScriptResult:
        """EVALSHA (reloading on NOSCRIPT), timed into the stats and the histogram."""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = self._parse(spec, await self._evalsha(spec, keys, args, span))
            outcome = result.code.value
            return result
        except _FAILURES as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self._record(spec, (time.perf_counter() - started) * 1000, outcome)

    async def _call_many(
        self,
        specs: Sequence[ScriptSpec],
        ordered: Sequence[tuple[list[ArgValue], list[ArgValue]]],
        spans: Sequence[trace.Span | None],
    ) -> list[ScriptResult]:
        """The EVALSHAs of run_together, in one pipeline (reloading a script on NOSCRIPT), each
        timed as the whole round trip."""
        started = time.perf_counter()
        outcomes = ["error"] * len(specs)
        try:
            if isinstance(self._client, RedisCluster):
                # redis-py refuses EVALSHA in a cluster pipeline: concurrent calls instead (still
                # about one round trip of waiting).
                calls = zip(specs, ordered, spans, strict=True)
                replies = list(
                    await asyncio.gather(*(self._evalsha(s, k, a, span) for s, (k, a), span in calls))
                )
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for spec, (keys, args) in zip(specs, ordered, strict=True):
                        pipe.evalsha(spec.sha, len(keys), *keys, *args)
                    replies = await pipe.execute(raise_on_error=False)
                for i, reply in enumerate(replies):
                    if isinstance(reply, NoScriptError):  # that one did not run: load it, run it
                        replies[i] = await self._evalsha(specs[i], *ordered[i], spans[i], missing=True)
                    elif isinstance(reply, Exception):
                        raise reply
            results = [self._parse(spec, reply) for spec, reply in zip(specs, replies, strict=True)]
            outcomes = [result.code.value for result in results]
            return results
        except _FAILURES as exc:
            outcomes = [type(exc).__name__] * len(specs)
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            for spec, outcome in zip(specs, outcomes, strict=True):
                self._record(spec, elapsed_ms, outcome)

    def _record(self, spec: ScriptSpec, elapsed_ms: float, outcome: str) -> None:
        self.stats.record(spec.name, elapsed_ms, error=outcome not in _CODES)
        if self._duration is not None:
            self._duration.record(elapsed_ms, {"script": spec.name, "result": outcome})

    async def _evalsha(
        self,
        spec: ScriptSpec,
        keys: list[ArgValue],
        args: list[ArgValue],
        span: trace.Span | None,
        missing: bool = False,
    ) -> object:
        """One EVALSHA; on NOSCRIPT (Redis restarted, failed over or flushed its script cache) the
        script is loaded and run once more. `missing`: it is known to be missing already."""
        if not missing:
            try:
                return await self._client.evalsha(spec.sha, len(keys), *keys, *args)
            except NoScriptError:
                pass
        if span is not None:
            span.add_event("NOSCRIPT: script reloaded")
            span.set_attribute("claudebench.script.reloaded", True)
        log.info("script %s was missing from Redis; reloading it", spec.name)
        await self._client.script_load(spec.source)
        return await self._client.evalsha(spec.sha, len(keys), *keys, *args)

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
