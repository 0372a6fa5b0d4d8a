"""The Work stream (push dispatch) and ClaimTask's long poll, over the process's Dispatcher.

A Work stream never changes who holds a task by ending: tasks pushed to it stay held by the
instance (it may reconnect and complete them) until it completes or releases them, unregisters, or
is declared dead by liveness recovery. After the hello the server first sends every task the
instance already holds (so a reconnecting worker learns of a push the broken stream may have lost),
then pushes new claims.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from claudebench.api import lifecycle_checks as lifecycle
from claudebench.api import validation as check
from claudebench.api.codec import task_from_snapshot
from claudebench.api.dispatch import Dispatcher, Waiter
from claudebench.api.guard import failure_status
from claudebench.api.validation import InvalidArgument
from claudebench.scripts.results import ResultCode
from claudebench.store.claims import ClaimResult
from claudebench.store.errors import DomainError
from claudebench.store.instances import InstanceStore
from claudebench.store.tasks import TaskSnapshot, TaskStore
from claudebench.v1 import tasks_pb2 as pb

log = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext[Any, Any]
MAX_WAIT_S = 30.0
# A long poll answers this long before the caller's deadline (so with an empty list, not an error).
DEADLINE_MARGIN_S = 0.05
MAX_CLAIM = 100
# How long a stream that ends waits for its reader and pusher to stop.
STOP_WAIT_S = 1.0
# ClaimTask: what a worker may take in one claim; a stream claims up to this many per round.
SHUTTING_DOWN = "the server is shutting down; reconnect (another replica may serve you)"
# Answers to the stream's requests: each the task the unary RPC would return, or raises as it would.
Answer = Callable[[Any], Awaitable[pb.Task]]


def wait_seconds(request: pb.ClaimTaskRequest) -> float:
    """ClaimTask.wait in seconds (0 = answer at once), at most 30 s."""
    if not request.HasField("wait"):
        return 0.0
    seconds = request.wait.seconds + request.wait.nanos / 1e9
    if not 0 <= seconds <= MAX_WAIT_S:
        raise InvalidArgument(f"wait must be 0 to {MAX_WAIT_S:g} s, not {seconds:g} s")
    return seconds


async def worker_queues(
    instances: InstanceStore, worker_id: str, named: list[str]
) -> tuple[int, frozenset[str]]:
    """A live worker's max_tasks and the queues it waits on: `named` (each one it registered for,
    else the error ClaimTask gives), or its registered queues when `named` is empty."""
    max_tasks, registered = await instances.live_worker(worker_id)
    for queue in named:
        if queue not in registered:
            raise DomainError(
                ResultCode.NOT_SUBSCRIBED,
                f"Worker {worker_id} is not registered for queue {queue}; register with it in queues",
            )
    return max_tasks, frozenset(named or registered)


def reopens_in(claim: ClaimResult, store: TaskStore) -> float | None:
    """Seconds until a queue the claim found closed by its rate limit takes claims again (None:
    no such queue; wait for a wake-up)."""
    if not claim.open_at_ms:
        return None
    return max(claim.open_at_ms - store.now_ms(), 1) / 1000


async def woken(waiter: Waiter, seconds: float | None) -> bool:
    """Sleep until the waiter is woken (True) or `seconds` pass (False)."""
    try:
        await asyncio.wait_for(waiter.woken.wait(), seconds)
    except TimeoutError:
        return False
    waiter.woken.clear()
    return True


class _End(Exception):
    """Ends the stream: with a status, or cleanly (code None)."""

    def __init__(self, code: grpc.StatusCode | None = None, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LongPoll:
    """ClaimTask(wait): claim; if nothing, sleep until woken, a rate limit's window reopens or the
    wait ends; claim again."""

    def __init__(self, store: TaskStore, instances: InstanceStore, dispatcher: Dispatcher) -> None:
        self._store = store
        self._instances = instances
        self._dispatcher = dispatcher

    async def claim(
        self, worker_id: str, max_tasks: int, named: list[str], wait_s: float, context: Ctx
    ) -> ClaimResult:
        loop = asyncio.get_running_loop()
        remaining = context.time_remaining()
        if remaining is not None:
            wait_s = min(wait_s, remaining - DEADLINE_MARGIN_S)
        deadline = loop.time() + wait_s
        _, queues = await worker_queues(self._instances, worker_id, named)
        waiter = Waiter(queues, max_tasks)
        dispatcher = self._dispatcher
        try:
            async with dispatcher.session(waiter):
                while True:
                    dispatcher.arm(waiter, max_tasks)
                    claim = await self._store.claim_from(worker_id, max_tasks, named)
                    dispatcher.claimed(waiter, len(claim.tasks), claim.pending)
                    timeout = deadline - loop.time()
                    if claim.tasks or timeout <= 0:
                        return claim
                    reopens = reopens_in(claim, self._store)
                    if reopens is not None and reopens >= timeout:
                        reopens = None  # the wait ends first
                    was_woken = await woken(waiter, timeout if reopens is None else reopens)
                    if not was_woken and reopens is None:
                        return claim
                    if dispatcher.closing:
                        break
        except ConnectionAbortedError:
            pass
        await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
        raise AssertionError("unreachable")  # pragma: no cover (abort raises)


class WorkSession:
    """One Work stream after its hello: pushes claims, answers requests, relays cancellations."""

    def __init__(
        self,
        store: TaskStore,
        dispatcher: Dispatcher,
        answers: dict[str, Answer],
        worker_id: str,
        named: list[str],
        queues: frozenset[str],
        capacity: int,
    ) -> None:
        self._store = store
        self._named = named  # the hello's queues ([] = the registered ones, as ClaimTask)
        self._dispatcher = dispatcher
        self._answers = answers
        self.worker_id = worker_id
        self.capacity = capacity
        self.waiter = Waiter(queues, capacity)
        self.held: dict[str, int] = {}  # task id -> attempts when handed to this worker
        self._outbox: asyncio.Queue[pb.WorkResponse | _End] = asyncio.Queue()
        self.ended = False

    # Holder (told by the dispatcher).
    def cancelled(self, task_id: str, reason: str) -> None:
        self._outbox.put_nowait(pb.WorkResponse(cancel=pb.WorkCancel(task_id=task_id, reason=reason)))
        self._forget(task_id)

    def lost(self, task_id: str, attempts: int) -> None:
        if self.held.get(task_id, attempts + 1) <= attempts:
            self._forget(task_id)

    def _forget(self, task_id: str) -> None:
        if self.held.pop(task_id, None) is not None:
            self._dispatcher.drop(task_id, self)
            self.waiter.woken.set()  # room for another task

    def _keep(self, snapshot: TaskSnapshot) -> pb.WorkResponse:
        task = task_from_snapshot(snapshot)
        self.held[task.id] = task.attempts
        self._dispatcher.hold(task.id, self)
        return pb.WorkResponse(task=task)

    async def run(self, requests: AsyncIterator[pb.WorkRequest]) -> AsyncGenerator[pb.WorkResponse, None]:
        async with self._dispatcher.session(self.waiter):
            yield pb.WorkResponse(ack=pb.WorkAck())  # the hello is accepted
            await self._resync()
            reader = asyncio.create_task(self._read(requests), name=f"work-read-{self.worker_id}")
            pusher = asyncio.create_task(self._push(), name=f"work-push-{self.worker_id}")
            try:
                while True:
                    item = await self._outbox.get()
                    if isinstance(item, _End):
                        if item.code is None:
                            return
                        raise item
                    yield item
            finally:
                # Cancelled, and told: a cancellation can be swallowed by a Redis call in flight
                # (the pusher would then wait on), so the pusher also checks `ended` when woken.
                self.ended = True
                self.waiter.woken.set()
                reader.cancel()
                pusher.cancel()
                await asyncio.wait([reader, pusher], timeout=STOP_WAIT_S)
                for task_id in list(self.held):
                    self._dispatcher.drop(task_id, self)

    async def _resync(self) -> None:
        """Send every task the instance holds that this stream does not know of yet."""
        page = await self._store.list_page(None, self.worker_id, 1000, None)
        for snapshot in page.tasks:
            if snapshot.get("id") not in self.held and snapshot.get("status") == "in_progress":
                self._outbox.put_nowait(self._keep(snapshot))

    async def _push(self) -> None:
        try:
            await self._push_forever()
        except asyncio.CancelledError:
            raise
        except _End as end:
            self._outbox.put_nowait(end)
        except Exception as exc:
            self._outbox.put_nowait(_End(*failure_status(exc, "Work")))

    async def _push_forever(self) -> None:
        dispatcher, waiter = self._dispatcher, self.waiter
        while not dispatcher.closing and not self.ended:
            free = min(self.capacity - len(self.held), MAX_CLAIM)
            if free <= 0:
                dispatcher.leave(waiter)  # a wake-up it cannot use goes to another waiter
                waiter.woken.clear()
            else:
                dispatcher.arm(waiter, free)
                try:
                    claim = await self._store.claim_from(self.worker_id, free, self._named)
                except DomainError as exc:
                    if exc.code is not ResultCode.AT_CAPACITY:
                        raise
                    claim = ClaimResult()
                    await self._resync()  # it holds tasks this stream did not hand it
                dispatcher.claimed(waiter, len(claim.tasks), claim.pending)
                for snapshot in claim.tasks:
                    self._outbox.put_nowait(self._keep(snapshot))
                if claim.tasks:
                    continue  # the queue may hold more (a claim that lost races returns short)
                await woken(waiter, reopens_in(claim, self._store))
                continue
            await waiter.woken.wait()
            waiter.woken.clear()
        if not self.ended:
            raise _End(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)

    async def _read(self, requests: AsyncIterator[pb.WorkRequest]) -> None:
        try:
            async for request in requests:
                self._outbox.put_nowait(await self._answer(request))
            self._outbox.put_nowait(_End())  # the worker closed its side: a clean end
        except asyncio.CancelledError:
            raise
        except _End as end:
            self._outbox.put_nowait(end)
        except Exception as exc:  # a message that could not be decoded, or the call broke
            self._outbox.put_nowait(
                _End(grpc.StatusCode.INVALID_ARGUMENT, f"a Work request could not be read: {exc}")
            )

    async def _answer(self, request: pb.WorkRequest) -> pb.WorkResponse:
        kind = request.WhichOneof("kind")
        if kind is None or kind == "hello":
            raise _End(
                grpc.StatusCode.INVALID_ARGUMENT,
                "after the hello, send only complete, progress or release",
            )
        inner = getattr(request, kind)
        if not inner.worker_id:
            inner.worker_id = self.worker_id
        ack = pb.WorkAck(task_id=inner.task_id)
        try:
            ack.task.CopyFrom(await self._answers[kind](inner))
        except Exception as exc:
            code, message = failure_status(exc, kind)
            ack.code, ack.message = code.value[0], message
            return pb.WorkResponse(ack=ack)
        if inner.worker_id == self.worker_id and kind in ("complete", "release"):
            self._forget(inner.task_id)
        return pb.WorkResponse(ack=ack)


async def serve(
    requests: AsyncIterator[pb.WorkRequest],
    context: Ctx,
    store: TaskStore,
    instances: InstanceStore,
    dispatcher: Dispatcher,
    answers: dict[str, Answer],
) -> AsyncGenerator[pb.WorkResponse, None]:
    """The Work RPC: every failure ends the stream with the one status of api/guard.py."""
    try:
        worker_id, named, queues, capacity = await _hello(requests, instances)
        session = WorkSession(store, dispatcher, answers, worker_id, named, queues, capacity)
        async for response in session.run(requests):
            yield response
        return
    except _End as end:
        code, message = end.code or grpc.StatusCode.OK, end.message
    except ConnectionAbortedError:
        code, message = grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN
    except Exception as exc:
        code, message = failure_status(exc, "Work")
    await context.abort(code, message)


async def _hello(
    requests: AsyncIterator[pb.WorkRequest], instances: InstanceStore
) -> tuple[str, list[str], frozenset[str], int]:
    """The stream's first message, checked: worker id, queues, capacity (bounded by max_tasks)."""
    try:
        first = await anext(requests)
    except StopAsyncIteration:
        raise InvalidArgument("send a hello first") from None
    except Exception as exc:
        raise InvalidArgument(f"the Work request could not be decoded: {exc}") from None
    if first.WhichOneof("kind") != "hello":
        raise InvalidArgument("the first Work message must be a hello (worker_id, queues, capacity)")
    worker_id = check.identifier(first.hello.worker_id, "hello.worker_id")
    named = lifecycle.queues(list(first.hello.queues))
    capacity = check.in_range(first.hello.capacity, "hello.capacity", 0, 1000)
    registered, queues = await worker_queues(instances, worker_id, named)
    return worker_id, named, queues, min(capacity or registered, registered)
