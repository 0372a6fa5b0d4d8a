"""`Worker`: what users write around claudebench, done once: register, heartbeat in the
background, claim up to capacity, run a handler per task, complete or fail it, and on shutdown
finish what is running and unregister (which releases anything still held)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from claudebench.client.async_client import AsyncClient
from claudebench.v1 import tasks_pb2

log = logging.getLogger(__name__)

Handler = Callable[[tasks_pb2.Task], Awaitable[Any]]


class Worker:
    """Runs `handler(task)` for claimed tasks, at most `capacity` at a time.

    The handler's return value (any JSON value) completes the task; an exception fails it with
    "<ExceptionType>: <message>". A task cancelled meanwhile (CancelTask) has its handler cancelled
    (asyncio cancellation) at the next heartbeat, which looks its running tasks up; handlers that
    call `client.report_progress` learn it from the reply too. `await worker.run()` returns after
    `worker.stop()`.
    """

    def __init__(
        self,
        client: AsyncClient,
        worker_id: str,
        handler: Handler,
        capacity: int = 4,
        roles: Sequence[str] = ("worker",),
        idle_poll_s: float = 0.2,
        shutdown_grace_s: float = 10.0,
    ) -> None:
        self.client = client
        self.worker_id = worker_id
        self.handler = handler
        self.capacity = capacity
        self.roles = list(roles)
        self.idle_poll_s = idle_poll_s
        self.shutdown_grace_s = shutdown_grace_s
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: dict[asyncio.Task[None], str] = {}
        self._cancelling: set[str] = set()  # ids of tasks whose handler we cancelled

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        registration = await self.client.register(self.worker_id, self.roles, self.capacity)
        interval = max(0.1, registration.heartbeat_interval.ToMilliseconds() / 1000)
        for task in registration.assigned_tasks:
            self._start(task)
        beating = asyncio.create_task(self._heartbeat(interval))
        try:
            while not self._stopping.is_set():
                free = self.capacity - len(self._running)
                claimed: Sequence[tasks_pb2.Task] = []
                if free > 0:
                    claimed = await self.client.claim(self.worker_id, free)
                    for task in claimed:
                        self._start(task)
                if not claimed:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_poll_s)
        finally:
            beating.cancel()
            if self._running:
                await asyncio.wait(self._running, timeout=self.shutdown_grace_s)
            released = await self.client.unregister(self.worker_id)
            if released:
                log.info("%s released %d unfinished tasks on shutdown", self.worker_id, released)

    def _start(self, task: tasks_pb2.Task) -> None:
        running = asyncio.create_task(self._execute(task))
        self._running[running] = task.id
        running.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()  # room for another task

    async def _cancel_cancelled(self) -> None:
        """Cancel the handler of every running task that was cancelled (CancelTask)."""
        for running, task_id in list(self._running.items()):
            try:
                task = await self.client.get_task(task_id)
            except grpc.aio.AioRpcError:
                continue  # gone or unreachable: the completion will say
            if task.status == tasks_pb2.TASK_STATUS_CANCELLED:
                log.info("%s: task %s was cancelled; cancelling its handler", self.worker_id, task_id)
                self._cancelling.add(task_id)
                running.cancel()

    async def _execute(self, task: tasks_pb2.Task) -> None:
        try:
            result = await self.handler(task)
        except asyncio.CancelledError:
            if task.id not in self._cancelling:
                raise  # cancelled from outside, not because the task was
            self._cancelling.discard(task.id)
            self.cancelled += 1
            return
        except Exception as exc:
            await self.client.fail(task.id, self.worker_id, f"{type(exc).__name__}: {exc}"[:4096])
            self.failed += 1
            return
        await self.client.complete(task.id, self.worker_id, result)
        self.completed += 1

    async def _heartbeat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.client.heartbeat(self.worker_id)
                await self._cancel_cancelled()
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                    # Declared offline (its tasks were recovered): come back as a new registration.
                    log.warning(
                        "%s lost its registration (%s); registering again", self.worker_id, exc.details()
                    )
                    await self.client.register(self.worker_id, self.roles, self.capacity)
                else:
                    log.warning("heartbeat of %s failed: %s", self.worker_id, exc.details())
