"""In-process hooks for applications on the `claude-agent-sdk` package: HookService decisions.

    options = ClaudeAgentOptions(hooks=hook_matchers("127.0.0.1:50051", instance_id="agent-1"))

claude-agent-sdk is an optional extra (`pip install claudebench[claude]`), imported only here.
"""

from __future__ import annotations

from typing import Any, Unpack, cast

import grpc
from google.protobuf import json_format, struct_pb2

from claudebench.client.channel import Security, aio_channel
from claudebench.v1 import hooks_pb2, hooks_pb2_grpc


class ClaudebenchHooks:
    """PreToolUse / PostToolUse callbacks (the SDK's HookCallback signature) calling the HookService."""

    def __init__(
        self,
        address: str,
        instance_id: str,
        timeout: float = 2.0,
        on_error: str = "deny",
        **security: Unpack[Security],
    ) -> None:
        self._stub = hooks_pb2_grpc.HookServiceStub(aio_channel(address, options=(), **security))
        self._instance_id = instance_id
        self._timeout = timeout
        self._on_error = on_error

    async def pre_tool_use(self, data: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
        request = hooks_pb2.PreToolUseRequest(
            tool=data["tool_name"],
            params=json_format.ParseDict(data.get("tool_input", {}), struct_pb2.Value()),
            instance_id=self._instance_id,
            session_id=str(data.get("session_id", ""))[:128],
        )
        try:
            reply = await self._stub.PreToolUse(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if self._on_error == "allow":
                return {}
            return _decision("deny", f"claudebench hook unavailable ({exc.code().name}); denied")
        if not reply.allow:
            return _decision("deny", reply.reason)
        output = _decision("allow", reply.reason)
        if reply.HasField("modified"):
            output["hookSpecificOutput"]["updatedInput"] = json_format.MessageToDict(reply.modified)
        return output

    async def post_tool_use(self, data: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
        response = data.get("tool_response")
        failed = isinstance(response, dict) and (
            response.get("isError") is True or response.get("success") is False
        )
        try:
            await self._stub.PostToolUse(
                hooks_pb2.PostToolUseRequest(
                    tool=data["tool_name"],
                    params=json_format.ParseDict(data.get("tool_input", {}), struct_pb2.Value()),
                    result=json_format.ParseDict(response, struct_pb2.Value()),
                    success=not failed,
                    instance_id=self._instance_id,
                    session_id=str(data.get("session_id", ""))[:128],
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            return {"systemMessage": f"claudebench could not record the tool result ({exc.code().name})"}
        return {}


def _decision(decision: str, reason: str) -> dict[str, Any]:
    specific: dict[str, Any] = {"hookEventName": "PreToolUse", "permissionDecision": decision}
    if reason:
        specific["permissionDecisionReason"] = reason
    return {"hookSpecificOutput": specific}


def hook_matchers(
    address: str, instance_id: str, matcher: str | None = None, **security: Unpack[Security]
) -> dict[str, Any]:
    """`ClaudeAgentOptions(hooks=...)`: both hooks for the tools `matcher` names (None: all); a
    token and TLS as for AsyncClient (the keywords of claudebench.client.channel.Security)."""
    from claude_agent_sdk import HookCallback, HookMatcher

    hooks = ClaudebenchHooks(address, instance_id, **security)
    # The callbacks take the SDK's TypedDicts as plain dicts and answer SyncHookJSONOutput dicts.
    pre, post = cast(HookCallback, hooks.pre_tool_use), cast(HookCallback, hooks.post_tool_use)
    return {
        "PreToolUse": [HookMatcher(matcher=matcher, hooks=[pre])],
        "PostToolUse": [HookMatcher(matcher=matcher, hooks=[post])],
    }
