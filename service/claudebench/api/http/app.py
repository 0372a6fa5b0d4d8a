"""The aiohttp application: routes, authentication, action log, and its start and stop.

Routes name RPCs (see rpc.py): an RPC whose servicer is not given, or not implemented yet, gets no
route and is absent from /api/v1/capabilities, so the page hides its view. A feature that lands
later (queues, schedules, cancel/retry) needs only its servicer passed in `services`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from claudebench.api.auth import READER_METHODS, may_call, role_for_header
from claudebench.api.http.events import EncodedEvents, stream_events
from claudebench.api.http.rpc import (
    HTTP_STATUS,
    BadRequest,
    Rpc,
    RpcAbort,
    build_request,
    error_body,
    implemented,
    parse_body,
    to_json,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    service: str
    rpc: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/tasks", "TaskService", "ListTasks"),
    Route("GET", "/api/v1/tasks/{task_id}", "TaskService", "GetTask"),
    Route("DELETE", "/api/v1/tasks/{task_id}", "TaskService", "DeleteTask"),
    Route("POST", "/api/v1/tasks/{task_id}/cancel", "TaskService", "CancelTask"),
    Route("POST", "/api/v1/tasks/{task_id}/retry", "TaskService", "RetryTask"),
    Route("GET", "/api/v1/health", "SystemService", "GetHealth"),
    Route("GET", "/api/v1/metrics", "SystemService", "GetMetrics"),
    Route("GET", "/api/v1/state", "SystemService", "GetState"),
    Route("GET", "/api/v1/queues", "QueueService", "ListQueues"),
    Route("GET", "/api/v1/queues/{queue}", "QueueService", "GetQueue"),
    Route("POST", "/api/v1/queues/{queue}/pause", "QueueService", "PauseQueue"),
    Route("POST", "/api/v1/queues/{queue}/resume", "QueueService", "ResumeQueue"),
    Route("GET", "/api/v1/schedules", "TaskService", "ListSchedules"),
    Route("GET", "/api/v1/schedules/{schedule_id}", "TaskService", "GetSchedule"),
    Route("POST", "/api/v1/schedules/{schedule_id}/pause", "TaskService", "PauseSchedule"),
    Route("POST", "/api/v1/schedules/{schedule_id}/resume", "TaskService", "ResumeSchedule"),
)

# The RPC whose permission guards each route that is not a transcoded RPC.
_EVENTS_RPC = "WatchTasks"
_LEADER_RPC = "GetState"
_CAPABILITIES_RPC = "GetHealth"

ROLE = web.RequestKey("role", str)

# Every response: the page runs only its own files and talks only to this server (no inline
# script, nothing from elsewhere, not framed), so injected markup could neither run nor send a
# token away.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def caller(request: web.Request) -> str:
    """Who made a request, for the action log: the token's role and a fingerprint of it (never the
    token), and the peer address."""
    role = request.get(ROLE)
    if role is None:
        who = "anonymous (no auth configured)"
    else:
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        who = f"{role} token sha256:{hashlib.sha256(token.encode()).hexdigest()[:12]}"
    return f"{who} from {request.remote}"


class Dashboard:
    """The dashboard's aiohttp application over the given servicers."""

    def __init__(
        self,
        services: Mapping[str, object],
        tokens: Mapping[str, str] | None,
        leader: Callable[[], Awaitable[str | None]],
    ) -> None:
        self._tokens = dict(tokens) if tokens else None
        self._leader = leader
        self.rpcs: dict[str, Rpc] = {}
        for name, servicer in services.items():
            for route in ROUTES:
                if route.service == name and implemented(servicer, name, route.rpc):
                    self.rpcs[route.rpc] = Rpc(name, route.rpc, servicer)
        watch = services.get("TaskService")
        self._watch = Rpc("TaskService", _EVENTS_RPC, watch) if watch is not None else None
        self._encoded = EncodedEvents()

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        app.on_response_prepare.append(_secure)
        for route in ROUTES:
            if route.rpc in self.rpcs:
                app.router.add_route(route.method, route.path, self._transcoded(self.rpcs[route.rpc]))
        app.router.add_get("/api/v1/capabilities", self._guard(_CAPABILITIES_RPC, self._capabilities))
        app.router.add_get("/api/v1/leader", self._guard(_LEADER_RPC, self._leader_handler))
        if self._watch is not None:
            watch, encoded = self._watch, self._encoded
            events = self._guard(_EVENTS_RPC, lambda r: stream_events(r, watch, encoded))
            app.router.add_get("/api/v1/events", events)
        app.router.add_get("/", self._index)
        app.router.add_static("/static", STATIC_DIR, append_version=False)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Unknown /api paths answer JSON too (the page shows the message)."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            if not request.path.startswith("/api/"):
                raise
            return _error(grpc.StatusCode.NOT_FOUND, f"no such API path: {request.method} {request.path}")
        except web.HTTPMethodNotAllowed:
            return _error(grpc.StatusCode.UNIMPLEMENTED, f"{request.method} is not allowed on {request.path}")

    def _guard(self, rpc: str, handler: Handler) -> Handler:
        """Authentication and authorisation as for the gRPC call of `rpc`."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            if self._tokens is not None:
                role = role_for_header(self._tokens, request.headers.get("Authorization", ""))
                if role is None:
                    return _error(
                        grpc.StatusCode.UNAUTHENTICATED,
                        "a valid 'Authorization: Bearer <token>' header is required",
                    )
                request[ROLE] = role
                if not may_call(role, rpc):
                    log.warning("refused %s: %s may not call %s", request.path, caller(request), rpc)
                    return _error(grpc.StatusCode.PERMISSION_DENIED, f"the {role} role may not call {rpc}")
            return await handler(request)

        return guarded

    def _transcoded(self, rpc: Rpc) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                body = parse_body(await request.text()) if request.can_read_body else None
                call = build_request(rpc.request_class(), request.match_info, request.query, body)
            except BadRequest as exc:
                return _error(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            acting = rpc.name not in READER_METHODS
            try:
                reply = await rpc.call(call)
            except RpcAbort as abort:
                if acting:
                    log.info(
                        "action %s %s by %s refused: %s %s",
                        rpc.name,
                        dict(request.match_info),
                        caller(request),
                        abort.code.name,
                        abort.details,
                    )
                return _error(abort.code, abort.details)
            if acting:
                log.info("action %s %s by %s", rpc.name, dict(request.match_info), caller(request))
            return web.json_response(to_json(reply))

        return self._guard(rpc.name, handle)

    async def _capabilities(self, request: web.Request) -> web.StreamResponse:
        """What this server offers and what the caller may do, so the page shows only that."""
        role = request.get(ROLE)
        return web.json_response(
            {
                "auth": self._tokens is not None,
                "role": role,
                "rpcs": sorted(self.rpcs),
                "allowed": sorted(r for r in self.rpcs if role is None or may_call(role, r)),
                "events": self._watch is not None,
            }
        )

    async def _leader_handler(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"leaderId": await self._leader() or ""})

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def _error(code: grpc.StatusCode, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=HTTP_STATUS[code])


class DashboardServer:
    """The HTTP listener on the running event loop (started after the gRPC server)."""

    def __init__(self, dashboard: Dashboard, shutdown_timeout_s: float = 1.0) -> None:
        self._runner = web.AppRunner(
            dashboard.application(),
            handle_signals=False,
            access_log=None,
            # A client that leaves cancels its handler: an SSE stream unsubscribes at once.
            handler_cancellation=True,
            shutdown_timeout=shutdown_timeout_s,
        )
        self.port = 0

    async def start(self, listen: str, reuse_port: bool = False) -> int:
        """Listen on host:port (port 0: any free one); returns the bound port."""
        host, _, port = listen.rpartition(":")
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]") or None, int(port), reuse_port=reuse_port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        address: Any = self._runner.addresses[0]
        self.port = int(address[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening; open streams end (their clients reconnect elsewhere or later)."""
        await self._runner.cleanup()
