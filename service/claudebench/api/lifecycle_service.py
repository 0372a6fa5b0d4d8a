"""TaskService RPCs of the task-lifecycle additions (cancel, retry, progress; schedules are in
api/schedule_rpcs.py).

A base class of TaskService, so that api/task_service.py keeps the original RPCs. RPCs not built yet
answer UNIMPLEMENTED with a plain message rather than the generated stub's "Method not implemented!".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc

from claudebench.v1 import tasks_pb2_grpc

UnaryHandler = Callable[[Any, Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[NoReturn]]


def not_built(rpc: str) -> UnaryHandler:
    """A handler that answers UNIMPLEMENTED for an RPC of the contract that is not built yet."""

    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> NoReturn:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"{rpc} is not implemented by this server version yet"
        )

    handler.__name__ = handler.__qualname__ = rpc
    handler.not_built = True  # type: ignore[attr-defined]  # read by api/http/rpc.implemented
    return handler


class LifecycleRpcs(tasks_pb2_grpc.TaskServiceServicer):
    """Cancel, retry and progress RPCs."""

    CancelTask = not_built("CancelTask")
    RetryTask = not_built("RetryTask")
    ReportProgress = not_built("ReportProgress")
