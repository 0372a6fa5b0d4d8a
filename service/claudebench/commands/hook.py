"""`claudebench hook pre-tool-use|post-tool-use`: Claude Code command hooks backed by the HookService.

Claude Code writes the hook's JSON on stdin and reads the decision from the exit code and stdout:
exit 0 with `{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": ...}}`.
A hook that crashes (any exit code but 0 and 2) lets the tool run, so every failure here is turned
into the `--on-error` decision (deny by default), printed as JSON with exit 0, within the deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from claudebench.commands import connection
from claudebench.v1 import hooks_pb2, hooks_pb2_grpc


def add_parser(commands: Any) -> None:
    hook = commands.add_parser("hook", help="Claude Code command hooks: read the hook JSON on stdin")
    hook.add_argument("event", choices=("pre-tool-use", "post-tool-use"))
    hook.add_argument("--server", default="127.0.0.1:50051", help="host:port of a claudebench server")
    hook.add_argument(
        "--instance-id",
        default=os.environ.get("CLAUDEBENCH_INSTANCE_ID", "claude-code"),
        help="the instance the calls are counted for (default $CLAUDEBENCH_INSTANCE_ID or claude-code)",
    )
    hook.add_argument("--on-error", choices=("deny", "allow"), default="deny", help="when no answer")
    hook.add_argument("--deadline", type=float, default=2.0, help="seconds for the whole hook")
    connection.add_flags(hook)


def _pre_output(decision: str, reason: str, updated: Any = None) -> dict[str, Any]:
    output: dict[str, Any] = {"hookEventName": "PreToolUse", "permissionDecision": decision}
    if reason:
        output["permissionDecisionReason"] = reason
    if updated is not None:
        output["updatedInput"] = updated
    return {"hookSpecificOutput": output}


def _value(data: Any) -> struct_pb2.Value:
    return json_format.ParseDict(data, struct_pb2.Value())


def _pre(stub: Any, payload: dict[str, Any], args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    request = hooks_pb2.PreToolUseRequest(
        tool=str(payload["tool_name"]),
        params=_value(payload.get("tool_input", {})),
        instance_id=args.instance_id,
        session_id=str(payload.get("session_id", ""))[:128],
    )
    reply = stub.PreToolUse(request, timeout=timeout)
    if not reply.allow:
        return _pre_output("deny", reply.reason)
    updated = json_format.MessageToDict(reply.modified) if reply.HasField("modified") else None
    return _pre_output("allow", reply.reason, updated if isinstance(updated, dict) else None)


def _post(stub: Any, payload: dict[str, Any], args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    response = payload.get("tool_response")
    failed = isinstance(response, dict) and (
        response.get("success") is False
        or response.get("isError") is True
        or response.get("interrupted") is True
    )
    stub.PostToolUse(
        hooks_pb2.PostToolUseRequest(
            tool=str(payload["tool_name"]),
            params=_value(payload.get("tool_input", {})),
            result=_value(response),
            success=not failed,
            execution_time_ms=max(0, int(payload.get("duration_ms", 0) or 0)),
            instance_id=args.instance_id,
            session_id=str(payload.get("session_id", ""))[:128],
        ),
        timeout=timeout,
    )
    return {}


def run(args: argparse.Namespace) -> int:
    """Answer one hook call on stdout; always exit 0 (Claude Code reads the JSON only then)."""
    started = time.monotonic()
    try:
        payload = json.loads(sys.stdin.read())
        if not isinstance(payload, dict) or not isinstance(payload.get("tool_name"), str):
            raise ValueError("the hook input is not a JSON object with a tool_name")
        timeout = max(0.05, args.deadline - (time.monotonic() - started))
        with connection.open_channel(args) as channel:
            stub = hooks_pb2_grpc.HookServiceStub(channel)
            answer = (_pre if args.event == "pre-tool-use" else _post)(stub, payload, args, timeout)
    except Exception as exc:  # any failure: the --on-error answer, never a crash (a crash lets the tool run)
        problem = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.RpcError) else str(exc)
        if args.event == "post-tool-use":
            answer = {"systemMessage": f"claudebench could not record the tool result: {problem}"}
        elif args.on_error == "allow":
            answer = {
                "systemMessage": f"claudebench hook unavailable ({problem}); allowed by --on-error allow"
            }
        else:
            answer = _pre_output(
                "deny", f"claudebench hook unavailable ({problem}); denied by --on-error deny"
            )
    print(json.dumps(answer))
    return 0
