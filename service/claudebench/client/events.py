"""Reading WatchTasks responses, batched (max_batch set) or one event per message."""

from __future__ import annotations

from collections.abc import Sequence

from claudebench.v1 import tasks_pb2

# The clients ask the server to coalesce up to this many waiting events per message: a subscriber
# that keeps up still gets each event at once; one that lags costs the server far fewer messages.
WATCH_BATCH = 100


def events_in(response: tasks_pb2.WatchTasksResponse) -> Sequence[tasks_pb2.TaskEvent]:
    """The events of one response in stream order: `events` when batched, else `event` (a server
    that predates max_batch answers in `event` whatever was asked)."""
    if response.events:
        return response.events
    return [response.event] if response.HasField("event") else []
