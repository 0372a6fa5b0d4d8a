"""Optional bearer-token authentication with roles, as a server interceptor.

Tokens come from settings (`auth_tokens`: "token:role,token:role" or a file of "token role" lines;
an optional third part lists the instance ids the token may act as, "token:role:w1|build-*").
Without tokens the server is open. Health and reflection stay open either way. A call without a
valid `authorization: Bearer <token>` header fails with UNAUTHENTICATED; a token whose role does
not allow the method fails with PERMISSION_DENIED, and so does a call acting as an instance that
belongs to another token (api/identity.py: a new RPC that acts as an instance joins its ACTS_AS
table with one line). Tokens are never logged or echoed.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import grpc

from claudebench.api.decoding import Undecodable
from claudebench.api.guard import failure_status
from claudebench.api.identity import ACTS_AS, Caller, Identities, Owners, finished, serving

# method name -> roles allowed (admin may call everything).
# QueueService: ListQueues/GetQueue read; PauseQueue, ResumeQueue and ConfigureQueue change how the
# whole fleet is served, so only admin may call them. Schedules are standing configuration that
# creates tasks forever: creating, pausing, resuming and deleting them is admin-only.
READER_METHODS = {
    "GetTask", "ListTasks", "WatchTasks", "GetHealth", "GetState", "GetMetrics", "ListQueues", "GetQueue",
    "GetSchedule", "ListSchedules",
}  # fmt: skip
WORKER_METHODS = READER_METHODS | {
    "CreateTask", "CreateTasks", "ClaimTask", "AssignTask", "UpdateTask", "CompleteTask", "CompleteTasks",
    "ReleaseTask", "Work", "Register", "Heartbeat", "Unregister", "CoordinateBatch", "QuorumVote",
    "PreToolUse", "PostToolUse", "CancelTask", "RetryTask", "ReportProgress",
}  # fmt: skip
ROLES: Mapping[str, set[str] | None] = {"admin": None, "worker": WORKER_METHODS, "reader": READER_METHODS}
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.")

HandlerContinuation = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]


_INSTANCE_PATTERN = re.compile(r"[A-Za-z0-9._:@-]+\*?|\*")


def parse_auth(spec: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """'token:role[:id|id...],...' or a path to a file of 'token role [id|id...]' lines ->
    {token: (role, instance id patterns)}."""
    text = Path(spec).read_text() if Path(spec).is_file() else spec.replace(",", "\n").replace(":", " ")
    tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2 or parts[1] not in ROLES:
            raise SystemExit(
                f"auth tokens, entry {number}: expected 'TOKEN ROLE [INSTANCE_IDS]' with ROLE one of "
                f"{sorted(ROLES)}"
            )
        patterns = tuple(p for part in parts[2:] for p in part.split("|") if p)
        if not all(_INSTANCE_PATTERN.fullmatch(p) for p in patterns):
            raise SystemExit(
                f"auth tokens, entry {number}: instance ids are separated by '|' and may end with '*'"
            )
        tokens[parts[0]] = (parts[1], patterns)
    if not tokens:
        raise SystemExit("auth tokens are configured but none was found")
    return tokens


def parse_tokens(spec: str) -> dict[str, str]:
    """The tokens of an auth spec (see parse_auth) -> {token: role}."""
    return {token: role for token, (role, _) in parse_auth(spec).items()}


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
    found = _token_for_header(tokens, header)
    return None if found is None else tokens[found]


def _token_for_header(tokens: Mapping[str, str], header: str) -> str | None:
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    found = None
    for token in tokens:  # every token compared, in constant time each
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = token
    return found


def may_call(role: str, method: str) -> bool:
    """Whether `role` may call the RPC named `method` (e.g. "DeleteTask")."""
    allowed = ROLES[role]
    return allowed is None or method in allowed


def _acting(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, caller: Caller, identities: Identities
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` (unary) checking first that `caller` may act as the instances of the request, and
    serving it with `caller` as the current caller (identity.current_caller)."""
    inner = handler.unary_unary
    assert inner is not None

    async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if not isinstance(request, Undecodable):  # the servicer answers INVALID_ARGUMENT
            try:
                refusal = await identities.refusal(caller, method, request)
            except Exception as exc:  # Redis unreachable while reading the owners
                await context.abort(*failure_status(exc, method))
            if refusal is not None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        token = serving(caller)
        try:
            return await inner(request, cast(Any, context))
        finally:
            finished(token)

    return grpc.unary_unary_rpc_method_handler(
        behaviour, handler.request_deserializer, handler.response_serializer
    )


def _acting_stream(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, caller: Caller, identities: Identities
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` (a bidirectional stream: Work) checking every request message before the servicer
    reads it: its first (the hello) refused with PERMISSION_DENIED and nothing done, a later one
    naming another instance ends the stream the same way."""
    inner = cast(Any, handler.stream_stream)  # typed as sync; grpc.aio's is an async generator
    assert inner is not None

    async def behaviour(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        refused: list[str] = []

        async def checked() -> AsyncIterator[Any]:
            async for request in requests:
                if not isinstance(request, Undecodable):
                    refusal = await identities.refusal(caller, method, request)
                    if refusal is not None:
                        refused.append(refusal)
                        return
                yield request

        iterator = checked()
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            first = None
        except Exception as exc:  # Redis unreachable while reading the owners
            await context.abort(*failure_status(exc, method))
        if refused:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refused[0])

        async def replayed() -> AsyncIterator[Any]:
            if first is not None:
                yield first
                async for request in iterator:
                    yield request

        async for response in inner(replayed(), cast(Any, context)):
            if refused:
                break
            yield response
        if refused:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refused[0])

    return grpc.stream_stream_rpc_method_handler(
        behaviour, handler.request_deserializer, handler.response_serializer
    )


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Mapping[str, str], identities: Identities) -> None:
        self._tokens = dict(tokens)
        self._identities = identities

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
        token = _token_for_header(self._tokens, headers[0] if headers else "")
        if token is None:
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid 'authorization: Bearer <token>' header is required",
            )
        role = self._tokens[token]
        method = full.rsplit("/", 1)[-1]
        if not may_call(role, method):
            return _refusal(
                handler, grpc.StatusCode.PERMISSION_DENIED, f"the {role} role may not call {method}"
            )
        if method in ACTS_AS and handler.unary_unary is not None:
            return _acting(handler, method, self._identities.caller(token, role), self._identities)
        if method in ACTS_AS and handler.stream_stream is not None:
            return _acting_stream(handler, method, self._identities.caller(token, role), self._identities)
        return handler


def auth_interceptor(spec: str, owners: Owners) -> BearerAuthInterceptor:
    """The interceptor for an auth spec (see parse_auth); `owners` reads the stored owners."""
    auth = parse_auth(spec)
    identities = Identities({token: instances for token, (_, instances) in auth.items()}, owners)
    return BearerAuthInterceptor({token: role for token, (role, _) in auth.items()}, identities)
