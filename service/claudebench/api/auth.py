"""Optional bearer-token authentication with roles, as a server interceptor.

Tokens come from settings (`auth_tokens`: "token:role,token:role" or a file of "token role" lines).
Without tokens the server is open. Health and reflection stay open either way. A call without a
valid `authorization: Bearer <token>` header fails with UNAUTHENTICATED; a token whose role does
not allow the method fails with PERMISSION_DENIED. Tokens are never logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc

# method name -> roles allowed (admin may call everything).
# QueueService: ListQueues/GetQueue read; PauseQueue, ResumeQueue and ConfigureQueue change how the
# whole fleet is served, so only admin may call them.
READER_METHODS = {
    "GetTask", "ListTasks", "WatchTasks", "GetHealth", "GetState", "GetMetrics", "ListQueues", "GetQueue",
}  # fmt: skip
WORKER_METHODS = READER_METHODS | {
    "CreateTask", "CreateTasks", "ClaimTask", "AssignTask", "UpdateTask", "CompleteTask", "CompleteTasks",
    "ReleaseTask", "Work", "Register", "Heartbeat", "Unregister", "CoordinateBatch", "QuorumVote",
    "PreToolUse", "PostToolUse", "CancelTask", "RetryTask", "ReportProgress",
}  # fmt: skip
ROLES: Mapping[str, set[str] | None] = {"admin": None, "worker": WORKER_METHODS, "reader": READER_METHODS}
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.")

HandlerContinuation = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]


def parse_tokens(spec: str) -> dict[str, str]:
    """'token:role,...' or a path to a file of 'token role' lines -> {token: role}."""
    text = Path(spec).read_text() if Path(spec).is_file() else spec.replace(",", "\n").replace(":", " ")
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ROLES:
            raise SystemExit(
                f"auth tokens, entry {number}: expected 'TOKEN ROLE' with ROLE one of {sorted(ROLES)}"
            )
        tokens[parts[0]] = parts[1]
    if not tokens:
        raise SystemExit("auth tokens are configured but none was found")
    return tokens


def _refusal(
    handler: grpc.RpcMethodHandler[Any, Any], code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    async def abort(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, message)
        yield  # pragma: no cover (makes this an async generator)

    async def abort_bidi(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, message)
        yield  # pragma: no cover (makes this an async generator)

    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            abort_bidi, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            abort_stream, handler.request_deserializer, handler.response_serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        abort, handler.request_deserializer, handler.response_serializer
    )


def role_for_header(tokens: Mapping[str, str], header: str) -> str | None:
    """The role of the token in an `authorization: Bearer <token>` header value, or None (missing,
    malformed or unknown). Used by the gRPC interceptor and the HTTP API alike."""
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    for token, role in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            return role
    return None


def may_call(role: str, method: str) -> bool:
    """Whether `role` may call the RPC named `method` (e.g. "DeleteTask")."""
    allowed = ROLES[role]
    return allowed is None or method in allowed


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = dict(tokens)

    async def intercept_service(
        self, continuation: HandlerContinuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        full = handler_call_details.method.lstrip("/")
        if handler is None or full.startswith(OPEN_SERVICES):
            return handler
        headers = [
            str(value)
            for key, value in handler_call_details.invocation_metadata or ()
            if key == "authorization"
        ]
        if len(headers) > 1:  # which one would count is anyone's guess: none does
            return _refusal(
                handler, grpc.StatusCode.UNAUTHENTICATED, "send exactly one 'authorization' header"
            )
        role = role_for_header(self._tokens, headers[0] if headers else "")
        if role is None:
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid 'authorization: Bearer <token>' header is required",
            )
        method = full.rsplit("/", 1)[-1]
        if not may_call(role, method):
            return _refusal(
                handler, grpc.StatusCode.PERMISSION_DENIED, f"the {role} role may not call {method}"
            )
        return handler
