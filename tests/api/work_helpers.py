"""A raw Work stream for tests: hello, read pushes, complete over the stream."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import struct_pb2

from claudebench.server import ClaudebenchServer
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc

Tasks = tasks_pb2_grpc.TaskServiceStub
System = system_pb2_grpc.SystemServiceStub


class Stream:
    """One Work stream of a registered worker; `tasks` collects what was pushed."""

    def __init__(self, tasks: Tasks, worker_id: str, auto_complete: bool = False) -> None:
        self.worker_id = worker_id
        # Complete every pushed task at once (without waiting for the ack) and count what is held.
        self.auto_complete = auto_complete
        self.outstanding = 0
        self.most_outstanding = 0
        self.call: Any = tasks.Work()
        self.pushed: list[tasks_pb2.Task] = []
        self.cancels: list[tasks_pb2.WorkCancel] = []
        self.acks: asyncio.Queue[tasks_pb2.WorkAck] = asyncio.Queue()
        self.arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        tasks: Tasks,
        system: System,
        worker_id: str,
        capacity: int = 0,
        max_tasks: int = 10,
        auto_complete: bool = False,
        queues: tuple[str, ...] = (),
    ) -> Stream:
        """Register (with `queues`, default the default queue) and say hello (serving them all)."""
        await system.Register(
            system_pb2.RegisterRequest(
                instance_id=worker_id, roles=["worker"], max_tasks=max_tasks, queues=list(queues)
            )
        )
        stream = cls(tasks, worker_id, auto_complete)
        await stream.hello(capacity)
        return stream

    async def hello(self, capacity: int = 0, queues: tuple[str, ...] = ()) -> None:
        hello = tasks_pb2.WorkHello(worker_id=self.worker_id, capacity=capacity, queues=list(queues))
        await self.call.write(tasks_pb2.WorkRequest(hello=hello))
        first = await self.call.read()
        assert first.WhichOneof("kind") == "ack"
        assert not first.ack.task_id
        assert first.ack.code == 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.call.read()
            if message is grpc.aio.EOF:
                return
            kind = message.WhichOneof("kind")
            if kind == "task":
                self.pushed.append(message.task)
                self.arrived.set()
                if self.auto_complete:
                    self.outstanding += 1
                    self.most_outstanding = max(self.most_outstanding, self.outstanding)
                    done = tasks_pb2.CompleteTaskRequest(
                        task_id=message.task.id, result=struct_pb2.Value(string_value=self.worker_id)
                    )
                    await self.call.write(tasks_pb2.WorkRequest(complete=done))
            elif kind == "ack" and self.auto_complete:
                assert message.ack.code == 0, message.ack
                self.outstanding -= 1
            elif kind == "cancel":
                self.cancels.append(message.cancel)
                self.arrived.set()
            else:
                await self.acks.put(message.ack)

    async def complete(self, task_id: str, result: str = "ok") -> tasks_pb2.WorkAck:
        request = tasks_pb2.CompleteTaskRequest(task_id=task_id, result=struct_pb2.Value(string_value=result))
        await self.call.write(tasks_pb2.WorkRequest(complete=request))
        return await asyncio.wait_for(self.acks.get(), 10)

    async def wait_for(self, count: int, seconds: float = 10.0) -> None:
        """Until at least `count` tasks were pushed."""
        async with asyncio.timeout(seconds):
            while len(self.pushed) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def status(self) -> grpc.StatusCode:
        """The stream's final status (after the server ended it)."""
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        code: grpc.StatusCode = await self.call.code()
        return code

    def cancel(self) -> None:
        """Break the stream (no clean close)."""
        self.call.cancel()
        if self._reader is not None:
            self._reader.cancel()


async def idle_waiters(server: ClaudebenchServer, count: int, queue: str = "default") -> None:
    """Until `count` waiters of the server's dispatcher are idle in `queue`."""
    assert server.dispatcher is not None
    for _ in range(500):
        if server.dispatcher.idle_count(queue) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.dispatcher.idle_count(queue)} idle waiters, expected {count}")
