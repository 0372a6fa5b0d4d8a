"""HookService: tool-use validation (rules, rate limit, circuit breaker) and result bookkeeping."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from redis import exceptions as redis_errors

from claudebench.api import validation as check
from claudebench.api.codec import compact_json
from claudebench.api.guard import guarded
from claudebench.hooks.config import HookConfigError, validate_config
from claudebench.hooks.rules import evaluate
from claudebench.scripts.results import ResultCode
from claudebench.store.hooks import LOG_RESULT_CHARS, HookStore
from claudebench.v1 import hooks_pb2 as pb
from claudebench.v1 import hooks_pb2_grpc

log = logging.getLogger(__name__)
Ctx = grpc.aio.ServicerContext
MAX_PARAMS_BYTES = 64 * 1024
# Params larger than this are evaluated on a worker thread: the rules are linear (RE2, which
# releases the GIL while it matches), yet a 64 KiB command with many configured patterns is some
# ms of work that the event loop, serving every other call, need not wait for.
INLINE_PARAMS_BYTES = 4 * 1024
_TOOL = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _tool(value: str) -> str:
    if not _TOOL.fullmatch(value):
        raise check.InvalidArgument(
            "tool must be 1..128 letters, digits or the characters . _ : - (e.g. Bash, file.write)"
        )
    return value


def _json_value(value: struct_pb2.Value, field: str) -> tuple[Any, int]:
    """The value as JSON data, and its size in bytes as compact JSON."""
    if value.WhichOneof("kind") is None:
        return None, 0
    check.json_payload(value, field, MAX_PARAMS_BYTES)
    decoded = json_format.MessageToDict(value)
    size = len(compact_json(decoded).encode())
    if size > MAX_PARAMS_BYTES:
        raise check.InvalidArgument(f"{field} is larger than {MAX_PARAMS_BYTES} bytes as JSON")
    return decoded, size


class HookService(hooks_pb2_grpc.HookServiceServicer):
    """PreToolUse, PostToolUse and ConfigureHook of claudebench.v1."""

    def __init__(self, store: HookStore, fail_open: bool) -> None:
        self._store = store
        self._fail_open = fail_open

    @guarded
    async def PreToolUse(
        self, request: pb.PreToolUseRequest, context: Ctx[pb.PreToolUseRequest, pb.PreToolUseResponse]
    ) -> pb.PreToolUseResponse:
        tool = _tool(request.tool)
        instance_id = check.identifier(request.instance_id, "instance_id")
        params, size = _json_value(request.params, "params")
        try:
            gate = await self._store.validate(tool, instance_id)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            # The original failed open silently; here the policy is explicit (closed by default).
            verdict = "allowed by the fail-open policy" if self._fail_open else "denied (fail-closed policy)"
            log.warning("PreToolUse for %s without Redis: %s", tool, verdict)
            return pb.PreToolUseResponse(
                allow=self._fail_open, reason=f"hook validation unavailable (Redis: {exc}); {verdict}"
            )
        if gate.code in (ResultCode.CIRCUIT_OPEN, ResultCode.RATE_LIMITED):
            return pb.PreToolUseResponse(allow=False, reason=gate.payload)
        if not gate.ok:
            raise AssertionError(f"HOOK_VALIDATE returned {gate.code}")
        outcome = json.loads(gate.payload)
        if size > INLINE_PARAMS_BYTES:
            decision = await asyncio.to_thread(evaluate, tool, params, outcome["config"])
        else:
            decision = evaluate(tool, params, outcome["config"])
        response = pb.PreToolUseResponse(allow=decision.allow, reason=decision.reason)
        if decision.modified is not None:
            json_format.ParseDict(decision.modified, response.modified)
        return response

    @guarded
    async def PostToolUse(
        self, request: pb.PostToolUseRequest, context: Ctx[pb.PostToolUseRequest, pb.PostToolUseResponse]
    ) -> pb.PostToolUseResponse:
        tool = _tool(request.tool)
        instance_id = check.identifier(request.instance_id, "instance_id")
        if request.execution_time_ms < 0:
            raise check.InvalidArgument("execution_time_ms must not be negative")
        result, _ = _json_value(request.result, "result")
        _json_value(request.params, "params")
        entry = {
            "instanceId": instance_id,
            "sessionId": request.session_id[:128],
            "success": request.success,
            "executionTimeMs": request.execution_time_ms,
            "result": compact_json(result)[:LOG_RESULT_CHARS],
        }
        outcome = await self._store.process_result(tool, request.success, entry)
        return pb.PostToolUseResponse(processed=True, error_count=int(outcome["errors"]))

    @guarded
    async def ConfigureHook(
        self,
        request: pb.ConfigureHookRequest,
        context: Ctx[pb.ConfigureHookRequest, pb.ConfigureHookResponse],
    ) -> pb.ConfigureHookResponse:
        tool = _tool(request.tool)
        check.json_payload(request.config, "config", MAX_PARAMS_BYTES)
        try:
            config = validate_config(json_format.MessageToDict(request.config))
        except HookConfigError as exc:
            raise check.InvalidArgument(str(exc)) from None
        await self._store.store_config(tool, config)
        response = pb.ConfigureHookResponse()
        response.config.update(config)
        return response
