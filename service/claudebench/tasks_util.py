"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[None]], rounds: int = 10) -> None:
    """Cancel the tasks and wait until they are done, cancelling again while any is still running.

    One cancel is not always enough on Python 3.11: a cancellation that lands just as an inner
    asyncio.wait_for/timeout completes can be swallowed, and a `while True` loop then runs on and a
    plain gather() waits forever (that is what hung server shutdowns in our tests).
    """
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in pending:
        log.error("background task %s did not stop", task.get_name())
