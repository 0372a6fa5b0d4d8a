"""A blocking client for scripts and tools; the same methods as AsyncClient for the common calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack

from claudebench.client.async_client import create_request, to_value
from claudebench.client.channel import Security, sync_channel
from claudebench.v1 import queues_pb2_grpc, system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc


class Client:
    """`with Client("127.0.0.1:50051") as client: client.create_task("...")`; a token and TLS as
    for AsyncClient (the keywords of claudebench.client.channel.Security)."""

    def __init__(self, address: str, timeout: float = 10.0, **security: Unpack[Security]) -> None:
        self._channel = sync_channel(address, **security)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(self._channel)
        self.system = system_pb2_grpc.SystemServiceStub(self._channel)
        self.queues = queues_pb2_grpc.QueueServiceStub(self._channel)
        self.timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def create_task(
        self,
        text: str,
        priority: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        task_id: str | None = None,
    ) -> tasks_pb2.Task:
        request = create_request(text, priority, metadata, task_id)
        response: tasks_pb2.CreateTaskResponse = self.tasks.CreateTask(request, timeout=self.timeout)
        return response.task

    def get_task(self, task_id: str) -> tasks_pb2.Task:
        response: tasks_pb2.GetTaskResponse = self.tasks.GetTask(
            tasks_pb2.GetTaskRequest(task_id=task_id), timeout=self.timeout
        )
        return response.task

    def claim(self, worker_id: str, max_tasks: int = 1) -> Sequence[tasks_pb2.Task]:
        response: tasks_pb2.ClaimTaskResponse = self.tasks.ClaimTask(
            tasks_pb2.ClaimTaskRequest(worker_id=worker_id, max_tasks=max_tasks), timeout=self.timeout
        )
        return response.tasks

    def complete(self, task_id: str, worker_id: str, result: Any = None) -> tasks_pb2.Task:
        response: tasks_pb2.CompleteTaskResponse = self.tasks.CompleteTask(
            tasks_pb2.CompleteTaskRequest(task_id=task_id, worker_id=worker_id, result=to_value(result)),
            timeout=self.timeout,
        )
        return response.task

    def register(
        self, instance_id: str, roles: Sequence[str] = (), max_tasks: int = 10
    ) -> system_pb2.RegisterResponse:
        response: system_pb2.RegisterResponse = self.system.Register(
            system_pb2.RegisterRequest(instance_id=instance_id, roles=list(roles), max_tasks=max_tasks),
            timeout=self.timeout,
        )
        return response
