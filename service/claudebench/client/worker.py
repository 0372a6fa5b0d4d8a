"""`Worker`: what users write around claudebench, done once: register, heartbeat in the background,
receive tasks over the `Work` stream (or long-poll ClaimTask), run a handler per task up to capacity,
complete or fail it, and on shutdown finish what is running and unregister (which releases the rest).

It survives what a deployment does to it: a server restart or rolling deploy, a Redis restart, a
network blip. Every transient failure is logged and retried with exponential backoff and jitter
(tenacity); a worker declared offline registers again; completions of tasks it still runs are
retried (a repeated CompleteTask by the holder is idempotent). Only a configuration error (bad
credentials, an invalid request, an unknown method) ends `run()` with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import grpc
from google.protobuf import duration_pb2
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from claudebench.client.async_client import AsyncClient, to_value
from claudebench.client.retries import StreamEnded, retriable_call, transient
from claudebench.v1 import tasks_pb2

log = logging.getLogger(__name__)

Handler = Callable[[tasks_pb2.Task], Awaitable[Any]]

_REFUSALS = {grpc.StatusCode.FAILED_PRECONDITION.value[0], grpc.StatusCode.NOT_FOUND.value[0]}
# After closing its side on stop, how long a worker waits for the server to end the stream.
CLOSE_WAIT_S = 2.0
# A stream that lived this long before breaking starts a fresh backoff (reconnects at once).
STABLE_AFTER_S = 2.0


async def _requests(
    outgoing: asyncio.Queue[tasks_pb2.WorkRequest | None],
) -> AsyncIterator[tasks_pb2.WorkRequest]:
    while (request := await outgoing.get()) is not None:
        yield request


class Worker:
    """Runs `handler(task)` for the tasks it receives, at most `capacity` at a time.

    The handler's return value (any JSON value) completes the task; an exception fails it with
    "<ExceptionType>: <message>"; a task cancelled on the server cancels its handler. `await
    worker.run()` returns after `worker.stop()`. `stream=False` long-polls ClaimTask instead of
    holding a Work stream.
    """

    def __init__(
        self,
        client: AsyncClient,
        worker_id: str,
        handler: Handler,
        capacity: int = 4,
        roles: Sequence[str] = ("worker",),
        stream: bool = True,
        poll_wait_s: float = 10.0,
        shutdown_grace_s: float = 10.0,
        max_backoff_s: float = 5.0,
        finish_retry_s: float = 300.0,
        queues: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.worker_id = worker_id
        self.handler = handler
        self.capacity = capacity
        self.roles = list(roles)
        self.queues = list(queues)  # registered; streams and claims take from all of them
        self.stream = stream
        self.poll_wait_s = poll_wait_s
        self.shutdown_grace_s = shutdown_grace_s
        self.max_backoff_s = max_backoff_s
        self.finish_retry_s = finish_retry_s
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.reconnects = 0
        self._stopping = asyncio.Event()
        self._room = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelled_ids: set[str] = set()
        self._registered = False
        self._interval = 1.0
        self._call: asyncio.Queue[tasks_pb2.WorkRequest | None] | None = None  # the open stream's
        self._acks: deque[asyncio.Future[tasks_pb2.WorkAck]] = deque()
        self._chores: set[asyncio.Task[Any]] = set()

    def stop(self) -> None:
        self._stopping.set()
        self._room.set()

    async def run(self) -> None:
        beating = asyncio.create_task(self._heartbeat_forever())
        try:
            await self._serve_forever()
        finally:
            self._stopping.set()
            beating.cancel()
            if self._running:
                await asyncio.wait(list(self._running.values()), timeout=self.shutdown_grace_s)
            for running in list(self._running.values()):
                running.cancel()  # past the grace period: Unregister releases their tasks
            if self._chores:  # releases of tasks pushed as it stopped, before Unregister
                await asyncio.wait(list(self._chores), timeout=self.shutdown_grace_s)
            await self._unregister()

    # Connecting, with backoff.
    def _retrying(self, stop_after_s: float | None = None) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(lambda exc: transient(exc) and not self._stopping.is_set()),
            wait=wait_random_exponential(multiplier=0.05, max=self.max_backoff_s),
            stop=stop_after_delay(stop_after_s) if stop_after_s is not None else (lambda _: False),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )

    async def _sleep(self, seconds: float) -> None:
        """Backoff that a stop() cuts short."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else exc
        log.warning("%s: %s; retrying (attempt %d)", self.worker_id, detail, state.attempt_number)

    async def _serve_forever(self) -> None:
        session = self._stream_session if self.stream else self._poll_session
        while not self._stopping.is_set():
            try:
                await self._retrying()(session)
            except Exception:
                if self._stopping.is_set():
                    return
                raise

    async def _register(self) -> None:
        if self._registered:
            return
        reply = await self.client.register(self.worker_id, self.roles, self.capacity, self.queues)
        self._interval = max(0.1, reply.heartbeat_interval.ToMilliseconds() / 1000)
        self._registered = True
        for task in reply.assigned_tasks:
            self._start(task)

    def _unregistered_by(self, exc: grpc.aio.AioRpcError) -> bool:
        if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
            self._registered = False  # declared offline: come back as a new registration
            return True
        return False

    # The Work stream.
    async def _stream_session(self) -> None:
        """One registration and Work stream, until the stream ends or the worker stopped. Returns
        (for a fresh backoff) when a stream that lived long enough broke; raises otherwise."""
        await self._register()
        started = asyncio.get_running_loop().time()
        # What this worker sends, in order (gRPC writes them from its own task); None closes.
        outgoing: asyncio.Queue[tasks_pb2.WorkRequest | None] = asyncio.Queue()
        hello = tasks_pb2.WorkHello(worker_id=self.worker_id, capacity=self.capacity)
        outgoing.put_nowait(tasks_pb2.WorkRequest(hello=hello))
        call: Any = self.client.tasks.Work(_requests(outgoing))
        finishing = None
        try:
            self._call = outgoing
            finishing = asyncio.create_task(self._close_when_stopped(call, outgoing))
            async for message in call:
                self._receive(message)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this worker is being cancelled
            # Else the call was cancelled (a read on a cancelled call raises this): on stop.
            if not self._stopping.is_set():
                raise StreamEnded("the Work call was cancelled") from None
            return
        except grpc.aio.AioRpcError as exc:
            self._unregistered_by(exc)
            if self._stopping.is_set():
                return
            if asyncio.get_running_loop().time() - started < STABLE_AFTER_S or not transient(exc):
                raise
            log.warning("%s: the Work stream broke (%s); reconnecting", self.worker_id, exc.details())
        finally:
            self._call = None
            if finishing is not None:
                finishing.cancel()
            while self._acks:
                ack = self._acks.popleft()
                if not ack.done():
                    ack.set_exception(StreamEnded("the Work stream ended"))
            call.cancel()
        self.reconnects += 1
        if not self._stopping.is_set() and asyncio.get_running_loop().time() - started < STABLE_AFTER_S:
            raise StreamEnded("the server ended the Work stream")

    def _receive(self, message: tasks_pb2.WorkResponse) -> None:
        kind = message.WhichOneof("kind")
        if kind == "task":
            if self._stopping.is_set():  # pushed as we stopped: give it back
                self._chore(self._finish(message.task.id, "release", reason="stopping"))
            else:
                self._start(message.task)
        elif kind == "cancel":
            running = self._running.get(message.cancel.task_id)
            if running is not None:
                self._cancel_handler(message.cancel.task_id, running)
        elif kind == "ack" and not message.ack.task_id:
            # Connected. A task cancelled before this stream was there (while reconnecting, or
            # handed over by Register before the hello) is looked up: no cancel message comes.
            if self._running:
                self._chore(self._cancel_cancelled())
        elif kind == "ack" and self._acks:
            ack = self._acks.popleft()
            if not ack.done():
                ack.set_result(message.ack)

    def _chore(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` in the background, keeping a reference until it is done."""
        chore = asyncio.create_task(work)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    async def _close_when_stopped(self, call: Any, outgoing: asyncio.Queue[Any]) -> None:
        """On stop: let running handlers finish (their completions still use this stream), then
        close our side; the server ends the stream after the last ack."""
        await self._stopping.wait()
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=self.shutdown_grace_s)
        self._call = None  # later completions and releases: by the unary RPCs
        outgoing.put_nowait(None)
        # The server answers the last acks and ends the stream; should its end not arrive, stop
        # waiting (the session was cancelled when it does arrive).
        await asyncio.sleep(CLOSE_WAIT_S)
        log.warning("%s: the server did not end the Work stream; closing it", self.worker_id)
        call.cancel()

    async def _send(self, kind: str, request: Any) -> tasks_pb2.WorkAck:
        outgoing = self._call
        if outgoing is None:
            raise StreamEnded("no Work stream")
        ack: asyncio.Future[tasks_pb2.WorkAck] = asyncio.get_running_loop().create_future()
        self._acks.append(ack)
        outgoing.put_nowait(tasks_pb2.WorkRequest(**{kind: request}))
        return await ack

    # Long polls (stream=False).
    async def _poll_session(self) -> None:
        await self._register()
        wait = duration_pb2.Duration()
        wait.FromMilliseconds(int(self.poll_wait_s * 1000))
        while not self._stopping.is_set():
            free = self.capacity - len(self._running)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            request = tasks_pb2.ClaimTaskRequest(worker_id=self.worker_id, max_tasks=free, wait=wait)
            call = self.client.tasks.ClaimTask(request, timeout=self.poll_wait_s + 5)
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait([asyncio.ensure_future(call), stopping], return_when=FIRST_COMPLETED)
                if not call.done():  # stopped while waiting (a claim it made is released by Unregister)
                    call.cancel()
                    return
                reply = await call
            except grpc.aio.AioRpcError as exc:
                self._unregistered_by(exc)
                raise
            finally:
                stopping.cancel()
            for task in reply.tasks:
                self._start(task)

    # Running tasks.
    def _start(self, task: tasks_pb2.Task) -> None:
        if task.id in self._running:
            return  # already running (sent again after a reconnect)
        running = asyncio.create_task(self._execute(task))
        self._running[task.id] = running
        running.add_done_callback(lambda _: self._finished(task.id))

    def _finished(self, task_id: str) -> None:
        self._running.pop(task_id, None)
        self._room.set()

    async def _execute(self, task: tasks_pb2.Task) -> None:
        try:
            result = await self.handler(task)
        except asyncio.CancelledError:
            if task.id in self._cancelled_ids:
                self._cancelled_ids.discard(task.id)
                self.cancelled += 1
                return  # cancelled on the server: nothing to report
            raise
        except Exception as exc:
            if await self._finish(task.id, "error", error=f"{type(exc).__name__}: {exc}"[:4096]):
                self.failed += 1
            return
        if await self._finish(task.id, "result", result=result):
            self.completed += 1

    async def _finish(self, task_id: str, outcome: str, **value: Any) -> bool:
        """Complete, fail or release a task: over the stream when one is open, else by the unary
        RPC, retried until it is recorded. False when the server refused (no longer ours)."""
        if outcome == "release":
            kind = "release"
            request: Any = tasks_pb2.ReleaseTaskRequest(task_id=task_id, worker_id=self.worker_id, **value)
        else:
            kind = "complete"
            request = tasks_pb2.CompleteTaskRequest(task_id=task_id, worker_id=self.worker_id)
            if outcome == "result":
                request.result.CopyFrom(to_value(value["result"]))
            else:
                request.error = value["error"]
        try:
            ack = await self._send(kind, request)
            if ack.code == 0:
                return True
            if ack.code in _REFUSALS:
                log.warning("%s: %s of %s refused: %s", self.worker_id, kind, task_id, ack.message)
                return False
        except (StreamEnded, grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # by the unary RPC
        unary = self.client.tasks.CompleteTask if kind == "complete" else self.client.tasks.ReleaseTask
        try:
            async for attempt in self._unary_retrying():
                with attempt:
                    await unary(request, timeout=self.client.timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("%s: %s of %s failed: %s", self.worker_id, kind, task_id, exc.details())
            return False
        return True

    def _unary_retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(retriable_call),
            wait=wait_random_exponential(multiplier=0.05, max=self.max_backoff_s),
            stop=stop_after_delay(self.finish_retry_s),
            reraise=True,
        )

    # Liveness.
    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._registered:
                continue  # the session registers again
            try:
                await self.client.heartbeat(self.worker_id)
                if not self.stream:
                    await self._cancel_cancelled()  # a stream is told at once (cancel messages)
            except grpc.aio.AioRpcError as exc:
                if self._unregistered_by(exc):
                    log.warning("%s lost its registration (%s)", self.worker_id, exc.details())
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await self._register()
                else:
                    log.warning("heartbeat of %s failed: %s", self.worker_id, exc.details())

    async def _cancel_cancelled(self) -> None:
        """Long-polling: cancel the handler of every running task that was cancelled (CancelTask)."""
        for task_id, running in list(self._running.items()):
            try:
                task = await self.client.get_task(task_id)
            except grpc.aio.AioRpcError:
                continue  # gone or unreachable: the completion will say
            if task.status == tasks_pb2.TASK_STATUS_CANCELLED:
                self._cancel_handler(task_id, running)

    def _cancel_handler(self, task_id: str, running: asyncio.Task[None]) -> None:
        log.info("%s: task %s was cancelled; cancelling its handler", self.worker_id, task_id)
        self._cancelled_ids.add(task_id)
        running.cancel()

    async def _unregister(self) -> None:
        try:
            async for attempt in self._unary_retrying().copy(stop=stop_after_delay(self.shutdown_grace_s)):
                with attempt:
                    released = await self.client.unregister(self.worker_id)
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "%s could not unregister (%s); liveness recovery releases its tasks",
                self.worker_id,
                exc.details(),
            )
            return
        if released:
            log.info("%s released %d unfinished tasks on shutdown", self.worker_id, released)
