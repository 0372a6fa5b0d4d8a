"""WatchTasks: ordered, complete, resumable, filtered, bounded, and ended cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2_grpc
from claudebench.v1 import tasks_pb2 as pb
from tests.api.helpers import close_channel, rpc_error, serving, subscribed
from tests.invariants import entries

Tasks = tasks_pb2_grpc.TaskServiceStub
Stream = Any  # grpc.aio.UnaryStreamCall[WatchTasksRequest, WatchTasksResponse]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, bookmark_interval_s=0.2, watch_buffer_events=200)


async def read(call: Stream, n: int, wait_s: float = 10) -> list[pb.TaskEvent]:
    events = []
    for _ in range(n):
        response = await asyncio.wait_for(call.read(), wait_s)
        assert response is not grpc.aio.EOF
        events.append(response.event)
    return events


async def read_until_ended(call: Stream) -> tuple[list[pb.TaskEvent], grpc.aio.AioRpcError]:
    """Every event until the stream ends with an error status, and that status."""
    events: list[pb.TaskEvent] = []
    while True:
        try:
            response = await asyncio.wait_for(call.read(), 10)
        except grpc.aio.AioRpcError as ended:
            return events, ended
        assert response is not grpc.aio.EOF, "the stream ended with OK"
        events.append(response.event)


async def stored_ids(redis_client: aioredis.Redis, keys: Keyspace) -> list[str]:
    return [entry_id for entry_id, _ in await entries(redis_client, keys.events)]


async def run_lifecycles(tasks: Tasks, worker: str, count: int) -> None:
    for i in range(count):
        await tasks.CreateTask(pb.CreateTaskRequest(text=f"{worker} {i}"))
        for claimed in (await tasks.ClaimTask(pb.ClaimTaskRequest(worker_id=worker))).tasks:
            await tasks.CompleteTask(
                pb.CompleteTaskRequest(
                    task_id=claimed.id, worker_id=worker, result=struct_pb2.Value(number_value=i)
                )
            )


@pytest.fixture
async def stubs(server: ClaudebenchServer) -> AsyncIterator[list[Tasks]]:
    """Four client connections, each with a registered worker w0..w3."""
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(4)]
    system = system_pb2_grpc.SystemServiceStub(channels[0])
    for n in range(4):
        await system.Register(system_pb2.RegisterRequest(instance_id=f"w{n}", max_tasks=1000))
    yield [tasks_pb2_grpc.TaskServiceStub(c) for c in channels]
    for channel in channels:
        await close_channel(channel)


async def test_subscriber_sees_every_event_once_in_stream_order(
    server: ClaudebenchServer, tasks: Tasks, stubs: list[Tasks], redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    call = tasks.WatchTasks(pb.WatchTasksRequest())
    await subscribed(server, 1)
    producers = asyncio.gather(*(run_lifecycles(s, f"w{n}", 250) for n, s in enumerate(stubs)))
    events = await read(call, 3000, wait_s=30)
    await producers

    assert [e.event_id for e in events] == await stored_ids(redis_client, keys)
    assert sum(e.type == pb.TASK_EVENT_TYPE_COMPLETED for e in events) == 1000
    completed = next(e for e in events if e.type == pb.TASK_EVENT_TYPE_COMPLETED)
    assert completed.task.status == pb.TASK_STATUS_COMPLETED
    assert completed.instance_id.startswith("w")
    call.cancel()


async def test_resume_after_a_disconnect_misses_and_repeats_nothing(
    server: ClaudebenchServer, tasks: Tasks, stubs: list[Tasks], redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await run_lifecycles(stubs[0], "w0", 20)  # 60 events before anyone watches
    first = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0"))
    seen = await read(first, 70 // 2)
    first.cancel()
    await run_lifecycles(stubs[1], "w1", 20)

    second = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id=seen[-1].event_id))
    await subscribed(server, 1)
    producing = asyncio.create_task(run_lifecycles(stubs[2], "w2", 10))
    seen += await read(second, 120 + 30 - len(seen))
    await producing
    second.cancel()

    assert [e.event_id for e in seen] == await stored_ids(redis_client, keys)


async def test_resume_across_a_server_restart(
    settings: Settings, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    assert settings.redis_url is not None
    seen: list[pb.TaskEvent] = []
    for round_ in range(2):
        app = ClaudebenchServer(settings, settings.redis_url)
        await app.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            cursor = seen[-1].event_id if seen else ""
            call = stub.WatchTasks(pb.WatchTasksRequest(after_event_id=cursor))
            await subscribed(app, 1)
            for i in range(30):
                await stub.CreateTask(pb.CreateTaskRequest(text=f"round {round_} task {i}"))
            seen += await read(call, 30)
            await app.stop(grace_s=1)
            # The stream ends with a status the client can act on, naming its resume point.
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(call.read(), 5)
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            assert f"after_event_id={seen[-1].event_id}" in (ended.value.details() or "")

    assert [e.event_id for e in seen] == await stored_ids(redis_client, keys)


async def test_cursor_checks(tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace) -> None:
    for i in range(20):
        await tasks.CreateTask(pb.CreateTaskRequest(text=f"t{i}"))
    ids = await stored_ids(redis_client, keys)
    await redis_client.xtrim(keys.events, maxlen=5, approximate=False)

    trimmed = pb.WatchTasksRequest(after_event_id=ids[3])
    details = await rpc_error(_first(tasks, trimmed), grpc.StatusCode.OUT_OF_RANGE)
    assert "re-list with ListTasks" in details
    assert f"after_event_id={ids[-1]}" in details
    future = pb.WatchTasksRequest(after_event_id="99999999999999-0")
    assert "stream was reset" in await rpc_error(_first(tasks, future), grpc.StatusCode.OUT_OF_RANGE)
    for bad in ("abc", "1-2-3", "-1"):
        await rpc_error(
            _first(tasks, pb.WatchTasksRequest(after_event_id=bad)), grpc.StatusCode.INVALID_ARGUMENT
        )

    # The cursor just before the oldest retained entry was itself trimmed: refused too.
    assert [
        e.event_id for e in await read(tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0")), 5)
    ] == (ids[-5:])
    from_kept = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id=ids[-3]))
    assert [e.event_id for e in await read(from_kept, 2)] == ids[-2:]
    from_kept.cancel()


async def _first(tasks: Tasks, request: pb.WatchTasksRequest) -> pb.WatchTasksResponse:
    call = tasks.WatchTasks(request)
    try:
        response: pb.WatchTasksResponse = await asyncio.wait_for(call.read(), 5)
        return response
    finally:
        call.cancel()


async def test_filters_and_bookmarks(
    server: ClaudebenchServer, tasks: Tasks, stubs: list[Tasks], redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    target = (await tasks.CreateTask(pb.CreateTaskRequest(text="target"))).task
    by_type = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0", types=[pb.TASK_EVENT_TYPE_COMPLETED]))
    by_task = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0", task_id=target.id))
    by_instance = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0", instance_id="w1"))
    nothing = tasks.WatchTasks(pb.WatchTasksRequest(task_id="no-such-task"))
    await subscribed(server, 4)
    await run_lifecycles(stubs[0], "w0", 3)
    await run_lifecycles(stubs[1], "w1", 2)

    assert {e.type for e in await read(by_type, 5)} == {pb.TASK_EVENT_TYPE_COMPLETED}
    first_of_target = await read(by_task, 1)
    assert [e.task_id for e in first_of_target] == [target.id]
    w1_events = await read(by_instance, 4)  # two claims, two completions
    assert {e.instance_id for e in w1_events} == {"w1"}

    # Nothing matched for a while: a bookmark carries the newest id, so resuming is cheap.
    (bookmark,) = await read(nothing, 1)
    newest = (await stored_ids(redis_client, keys))[-1]
    assert (bookmark.type, bookmark.event_id, bookmark.task_id) == (pb.TASK_EVENT_TYPE_BOOKMARK, newest, "")
    # After the bookmark the task event shows up and nothing before it is repeated.
    by_task_resumed = tasks.WatchTasks(
        pb.WatchTasksRequest(after_event_id=bookmark.event_id, task_id=target.id)
    )
    await subscribed(server, 5)
    await stubs[0].UpdateTask(pb.UpdateTaskRequest(task_id=target.id, text="changed"))
    (update,) = await read(by_task_resumed, 1)
    assert (update.type, update.task.text) == (pb.TASK_EVENT_TYPE_UPDATED, "changed")
    assert "types may hold only change events" in await rpc_error(
        _first(tasks, pb.WatchTasksRequest(types=[pb.TASK_EVENT_TYPE_BOOKMARK])),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    for call in (by_type, by_task, by_instance, nothing, by_task_resumed):
        call.cancel()


async def test_a_slow_subscriber_is_cut_off_without_slowing_the_others(
    server: ClaudebenchServer, tasks: Tasks, stubs: list[Tasks], redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    slow = tasks.WatchTasks(pb.WatchTasksRequest())  # never read until the burst is over
    fast = tasks.WatchTasks(pb.WatchTasksRequest())
    await subscribed(server, 2)
    # Large events, so that they outgrow what HTTP/2 flow control lets the transports buffer
    # (megabytes) and the slow subscriber's own buffer fills up.
    padding = struct_pb2.Struct()
    padding.update({"padding": "x" * 40_000})
    total, wave = 800, 40
    fast_events: list[pb.TaskEvent] = []
    # In waves the fast subscriber keeps up with, however slowly this machine runs it (a fast
    # subscriber more than its buffer behind would be cut off too, rightly); the slow one falls
    # further behind with every wave.
    for start in range(0, total, wave):
        await asyncio.gather(
            *(
                stubs[i % len(stubs)].CreateTask(pb.CreateTaskRequest(text=f"burst {i}", metadata=padding))
                for i in range(start, start + wave)
            )
        )
        fast_events += await read(fast, wave, wait_s=30)
    assert [e.event_id for e in fast_events] == await stored_ids(redis_client, keys)
    fast.cancel()

    received, cut = await read_until_ended(slow)
    assert cut.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < len(received) < total
    assert f"resume with after_event_id={received[-1].event_id}" in (cut.details() or "")
    assert [e.event_id for e in received] == [e.event_id for e in fast_events[: len(received)]]
    await subscribed(server, 0)


async def test_five_hundred_subscribers_receive_a_burst(server: ClaudebenchServer, tasks: Tasks) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(5)]
    calls = [
        tasks_pb2_grpc.TaskServiceStub(channels[i % 5]).WatchTasks(pb.WatchTasksRequest()) for i in range(500)
    ]
    try:
        await subscribed(server, 500)
        created = [
            (await tasks.CreateTask(pb.CreateTaskRequest(text=f"burst {i}"))).task.id for i in range(10)
        ]
        received = await asyncio.gather(*(read(c, 10, wait_s=30) for c in calls))
        assert all([e.task_id for e in events] == created for events in received)
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await close_channel(channel)
    await subscribed(server, 0)


async def test_cancelling_a_stream_releases_its_subscription(server: ClaudebenchServer, tasks: Tasks) -> None:
    call = tasks.WatchTasks(pb.WatchTasksRequest())
    await subscribed(server, 1)
    call.cancel()
    await subscribed(server, 0)


async def test_trimming_during_a_slow_replay_is_reported_not_skipped(
    tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    await tasks.CreateTasks(
        pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text=f"t{i}") for i in range(900)])
    )
    ids = await stored_ids(redis_client, keys)
    call = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id=ids[0]))
    first = await read(call, 1)  # the server has read its first page of history
    await redis_client.xtrim(keys.events, maxlen=10, approximate=False)  # the rest is gone
    received, ended = await read_until_ended(call)
    assert ended.code() == grpc.StatusCode.OUT_OF_RANGE
    got = [e.event_id for e in first + received]
    assert got == ids[1 : 1 + len(got)]  # what it did send has no gap
    assert len(got) < len(ids) - 1


async def test_a_subscriber_after_an_idle_spell_sees_only_what_it_asked_for(
    server: ClaudebenchServer, tasks: Tasks
) -> None:
    """With nobody watching the reader pauses; the next subscriber still gets exactly the events
    after its start ('') or after its cursor, not what was written while the reader slept."""
    first = tasks.WatchTasks(pb.WatchTasksRequest())
    await subscribed(server, 1)
    first.cancel()
    await subscribed(server, 0)
    idle = [(await tasks.CreateTask(pb.CreateTaskRequest(text=f"idle {i}"))).task.id for i in range(5)]
    live = tasks.WatchTasks(pb.WatchTasksRequest())
    replay = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0"))
    await subscribed(server, 2)
    fresh = (await tasks.CreateTask(pb.CreateTaskRequest(text="fresh"))).task.id
    assert [e.task_id for e in await read(live, 1)] == [fresh]
    assert [e.task_id for e in await read(replay, 6)] == [*idle, fresh]
    live.cancel()
    replay.cancel()


async def test_age_retention_drops_old_events_and_their_cursors_are_refused(
    settings: Settings, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    async with serving(dataclasses.replace(settings, event_retention_s=1.0)) as (_, channel):
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        old = await tasks.CreateTasks(
            pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text=f"old {i}") for i in range(250)])
        )
        first_old = (await stored_ids(redis_client, keys))[0]
        await asyncio.sleep(1.6)  # older than the age, and a trim has run since
        fresh = (await tasks.CreateTask(pb.CreateTaskRequest(text="fresh"))).task.id
        remaining = await stored_ids(redis_client, keys)
        assert len(remaining) < 101, "whole nodes of old events should be gone"
        watch = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id=first_old))
        assert "re-list with ListTasks" in await rpc_error(watch.read(), grpc.StatusCode.OUT_OF_RANGE)
        replay = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0"))
        events = await read(replay, len(remaining))
        assert events[-1].task_id == fresh
        assert len(old.tasks) == 250
        replay.cancel()


async def read_batches(call: Stream, n_events: int, wait_s: float = 10) -> list[list[pb.TaskEvent]]:
    """Messages of a batched stream (each as its list of events) until n_events were received."""
    batches: list[list[pb.TaskEvent]] = []
    while sum(map(len, batches)) < n_events:
        response = await asyncio.wait_for(call.read(), wait_s)
        assert response is not grpc.aio.EOF
        assert not response.HasField("event"), "a batched stream carries its events in `events`"
        batches.append(list(response.events))
    return batches


async def test_max_batch_coalesces_waiting_events_in_stream_order(
    server: ClaudebenchServer, tasks: Tasks, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    for i in range(120):
        await tasks.CreateTask(pb.CreateTaskRequest(text=f"before {i}"))
    history = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id="0", max_batch=50))
    # History goes out in full batches.
    assert [len(b) for b in await read_batches(history, 120)] == [50, 50, 20]
    await subscribed(server, 1)

    # 120 events appended by one script reach the subscriber in one read: they wait together.
    await tasks.CreateTasks(
        pb.CreateTasksRequest(tasks=[pb.CreateTaskRequest(text=f"burst {i}") for i in range(120)])
    )
    live = await read_batches(history, 120)
    assert [len(b) for b in live] == [50, 50, 20]
    # One at a time when the subscriber keeps up.
    await tasks.CreateTask(pb.CreateTaskRequest(text="alone"))
    assert [len(b) for b in await read_batches(history, 1)] == [1]
    history.cancel()

    stored = await stored_ids(redis_client, keys)
    # Resuming from the last event of a batch repeats and misses nothing.
    resumed = tasks.WatchTasks(pb.WatchTasksRequest(after_event_id=live[0][-1].event_id, max_batch=1000))
    rest = [e.event_id for b in await read_batches(resumed, 71) for e in b]
    assert rest == stored[-71:]
    resumed.cancel()


async def test_max_batch_bookmarks_and_limits(server: ClaudebenchServer, tasks: Tasks) -> None:
    nothing = tasks.WatchTasks(pb.WatchTasksRequest(task_id="no-such-task", max_batch=10))
    await subscribed(server, 1)
    await tasks.CreateTask(pb.CreateTaskRequest(text="unwatched"))
    ((bookmark,),) = await read_batches(nothing, 1)
    assert bookmark.type == pb.TASK_EVENT_TYPE_BOOKMARK
    nothing.cancel()
    for bad in (0, -1, 1001):
        details = await rpc_error(
            _first(tasks, pb.WatchTasksRequest(max_batch=bad)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert f"max_batch must be 1..1000 (or unset for one event per message), not {bad}" in details
