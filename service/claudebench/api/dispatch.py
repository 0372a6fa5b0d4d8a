"""Push dispatch: who is woken when a task becomes claimable, and who is told when it is cancelled.

One `Dispatcher` per server process listens to the process's event hub (the one XREAD of the task
event stream; no Redis connection and no polling per worker). Workers waiting for a task (Work
streams with free capacity, ClaimTask long polls) are `Waiter`s, kept per queue in the order they
became idle. An event that makes tasks claimable (CREATED, RELEASED, REASSIGNED, TIMED_OUT, or
UPDATED to PENDING, e.g. a due SCHEDULED task promoted) wakes, in that task's queue only, the
longest-idle waiters whose free capacity covers the new tasks, and no one else; a woken waiter runs the same
atomic claim as ClaimTask, so a task has exactly one winner whoever else claims it.

A queue whose tasks a waiter's claim left pending (paused, at its concurrency cap, rate limited) is
*held back*: any later event of a task of that queue that is not a hand-over (completed, failed,
cancelled, deleted, ...) may have freed a place under its cap, and wakes one of its waiters. A queue
resumed or given a higher cap through this replica wakes its waiters (`poke`). A claim refused by a
rate limit is retried by the waiter itself at the time the window reopens (work.py).

A waiter is armed *before* it claims and claims before it sleeps, so a task created while it was
claiming either is in that claim or wakes it again: no wake-up is lost. Every replica wakes its own
waiters, so one task wakes at most one waiter per replica.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Protocol

from claudebench.api.codec import DEFAULT_QUEUE
from claudebench.events.hub import Entry, EventHub

# Event types after which the task (per its snapshot) may be claimable: created, given back,
# recovered from a dead holder, taken back at its lease deadline, or UPDATED to PENDING (a due
# delayed task promoted, RetryTask, UpdateTask).
WAKING_TYPES = frozenset({"created", "released", "reassigned", "timed_out", "updated"})
# Event types that cannot take a task away from its holder (any other is checked: SCHEDULED, for
# one, is a failed attempt waiting for its retry).
KEEPING_TYPES = frozenset({"created", "claimed", "assigned", "progress"})


class Waiter:
    """A worker waiting for tasks of some queues, able to take `free` more."""

    __slots__ = ("free", "queues", "woken")

    def __init__(self, queues: Iterable[str], free: int = 1) -> None:
        self.queues = frozenset(queues)
        self.free = free
        self.woken = asyncio.Event()


class Holder(Protocol):
    """A Work stream: told when a task it holds is cancelled or leaves it some other way."""

    worker_id: str

    def cancelled(self, task_id: str, reason: str) -> None: ...

    def lost(self, task_id: str, attempts: int) -> None: ...


class Dispatcher:
    """The process's waiters and held tasks, woken and told from the event hub's entries."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        # queue -> waiters, in the order they became idle (dicts keep insertion order).
        self._idle: dict[str, dict[Waiter, None]] = {}
        self._holders: dict[str, Holder] = {}  # task id -> the stream holding it
        self._sessions = 0
        self._waiters: set[Waiter] = set()  # every open session's, idle or not
        self._listening = False
        self._lock = asyncio.Lock()
        self.closing = False
        self.wakeups = 0  # waiters woken by events (for tests and metrics)
        # Queues whose pending tasks a waiter's claim could not take (paused, capped, rate limited).
        self._held_back: set[str] = set()

    @asynccontextmanager
    async def session(self, waiter: Waiter) -> AsyncIterator[None]:
        """While a stream or a long poll is open: the hub's entries reach this dispatcher."""
        if self.closing:
            raise ConnectionAbortedError("the server is shutting down")
        self._sessions += 1
        self._waiters.add(waiter)
        try:
            async with self._lock:
                if not self._listening:
                    await self._hub.listen(self)
                    self._listening = True
            yield
        finally:
            self.leave(waiter)
            self._waiters.discard(waiter)
            self._sessions -= 1
            if self._sessions == 0 and self._listening:
                self._hub.unlisten(self)
                self._listening = False

    def arm(self, waiter: Waiter, free: int) -> None:
        """`waiter` is idle (or about to claim) with room for `free` tasks. A waiter already armed
        keeps its place: idle since it first armed."""
        waiter.free = free
        for queue in waiter.queues:
            self._idle.setdefault(queue, {}).setdefault(waiter, None)

    def claimed(self, waiter: Waiter, took: int, pending: int) -> None:
        """What a waiter's claim saw: it took `took` tasks, and its queues had `pending` left."""
        if took == 0 and pending > 0:
            self._held_back |= waiter.queues
        elif pending == 0:
            self._held_back -= waiter.queues

    def poke(self, queue: str) -> None:
        """A queue was resumed or its limits raised: its idle waiters claim again."""
        self._wake(queue, 1 << 30)

    def idle_count(self, queue: str) -> int:
        return len(self._idle.get(queue, ()))

    def disarm(self, waiter: Waiter) -> None:
        for queue in waiter.queues:
            waiters = self._idle.get(queue)
            if waiters is not None:
                waiters.pop(waiter, None)
                if not waiters:
                    del self._idle[queue]

    def leave(self, waiter: Waiter) -> None:
        """The waiter is gone. A wake-up it did not use goes to the next waiter of its queues."""
        self.disarm(waiter)
        if waiter.woken.is_set() and not self.closing:
            for queue in waiter.queues:
                self._wake(queue, waiter.free)

    def hold(self, task_id: str, holder: Holder) -> None:
        self._holders[task_id] = holder

    def drop(self, task_id: str, holder: Holder) -> None:
        if self._holders.get(task_id) is holder:
            del self._holders[task_id]

    def close(self) -> None:
        """Shutdown: wake every waiter (it sees `closing` and answers UNAVAILABLE)."""
        self.closing = True
        for waiter in self._waiters:
            waiter.woken.set()
        self._idle.clear()

    # Listener of the event hub.
    def entries(self, entries: list[Entry]) -> None:
        new: dict[str, int] = {}
        for entry in entries:
            fields = entry.fields
            kind = fields["type"]
            task_id = fields.get("task_id", "")
            holder = self._holders.get(task_id) if self._holders else None
            if kind not in WAKING_TYPES and holder is None and not self._held_back:
                continue
            snapshot = json.loads(fields["task"]) if "task" in fields else {}
            queue = snapshot.get("queue") or DEFAULT_QUEUE
            if kind in WAKING_TYPES and snapshot.get("status", "pending") == "pending":
                new[queue] = new.get(queue, 0) + 1
            elif queue in self._held_back and kind not in KEEPING_TYPES:
                new.setdefault(queue, 1)  # a place under the queue's cap may have freed
            if holder is not None and kind not in KEEPING_TYPES:
                self._tell(holder, task_id, kind, snapshot)
        for queue, count in new.items():
            self._wake(queue, count)

    def gap(self) -> None:
        """Events may have been missed: every idle waiter claims once more."""
        for queue in list(self._idle):
            self._wake(queue, 1 << 30)

    def _tell(self, holder: Holder, task_id: str, kind: str, snapshot: dict[str, str]) -> None:
        if kind == "cancelled":
            holder.cancelled(task_id, snapshot.get("cancelReason", ""))
        elif snapshot.get("status") != "in_progress" or snapshot.get("assignedTo") != holder.worker_id:
            # Gone (completed, failed, released, reassigned, deleted, timed out) unless the event
            # is older than the hand-over the holder knows (fewer attempts).
            holder.lost(task_id, int(snapshot.get("attempts", 1 << 30)))

    def _wake(self, queue: str, count: int) -> None:
        """Wake the longest-idle waiters of `queue` until their free capacity covers `count`."""
        waiters = self._idle.get(queue)
        while waiters and count > 0:
            waiter = next(iter(waiters))
            self.disarm(waiter)
            waiter.woken.set()
            self.wakeups += 1
            count -= waiter.free
