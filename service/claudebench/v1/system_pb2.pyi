import datetime

from claudebench.v1 import tasks_pb2 as _tasks_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_HEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DEGRADED: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNHEALTHY: _ClassVar[HealthStatus]
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_UNHEALTHY: HealthStatus

class RegisterRequest(_message.Message):
    __slots__ = ("instance_id", "roles", "max_tasks", "metadata", "queues")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    max_tasks: int
    metadata: _struct_pb2.Struct
    queues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, instance_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., max_tasks: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., queues: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("registered", "became_leader", "assigned_tasks", "heartbeat_interval", "ttl")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    BECAME_LEADER_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_TASKS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    registered: bool
    became_leader: bool
    assigned_tasks: _containers.RepeatedCompositeFieldContainer[_tasks_pb2.Task]
    heartbeat_interval: _duration_pb2.Duration
    ttl: _duration_pb2.Duration
    def __init__(self, registered: _Optional[bool] = ..., became_leader: _Optional[bool] = ..., assigned_tasks: _Optional[_Iterable[_Union[_tasks_pb2.Task, _Mapping]]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("instance_id",)
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    def __init__(self, instance_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("alive", "is_leader")
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    IS_LEADER_FIELD_NUMBER: _ClassVar[int]
    alive: bool
    is_leader: bool
    def __init__(self, alive: _Optional[bool] = ..., is_leader: _Optional[bool] = ...) -> None: ...

class UnregisterRequest(_message.Message):
    __slots__ = ("instance_id",)
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    def __init__(self, instance_id: _Optional[str] = ...) -> None: ...

class UnregisterResponse(_message.Message):
    __slots__ = ("unregistered", "tasks_released")
    UNREGISTERED_FIELD_NUMBER: _ClassVar[int]
    TASKS_RELEASED_FIELD_NUMBER: _ClassVar[int]
    unregistered: bool
    tasks_released: int
    def __init__(self, unregistered: _Optional[bool] = ..., tasks_released: _Optional[int] = ...) -> None: ...

class CheckHealthRequest(_message.Message):
    __slots__ = ("timeout",)
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CheckHealthResponse(_message.Message):
    __slots__ = ("healthy", "failed", "reassigned")
    class ReassignedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    REASSIGNED_FIELD_NUMBER: _ClassVar[int]
    healthy: _containers.RepeatedScalarFieldContainer[str]
    failed: _containers.RepeatedScalarFieldContainer[str]
    reassigned: _containers.ScalarMap[str, int]
    def __init__(self, healthy: _Optional[_Iterable[str]] = ..., failed: _Optional[_Iterable[str]] = ..., reassigned: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHealthResponse(_message.Message):
    __slots__ = ("status", "redis_ok", "live_instances", "offline_instances", "stale_instances", "partition_suspected", "reason")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REDIS_OK_FIELD_NUMBER: _ClassVar[int]
    LIVE_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    STALE_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    PARTITION_SUSPECTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    status: HealthStatus
    redis_ok: bool
    live_instances: int
    offline_instances: int
    stale_instances: int
    partition_suspected: bool
    reason: str
    def __init__(self, status: _Optional[_Union[HealthStatus, str]] = ..., redis_ok: _Optional[bool] = ..., live_instances: _Optional[int] = ..., offline_instances: _Optional[int] = ..., stale_instances: _Optional[int] = ..., partition_suspected: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class CoordinateBatchRequest(_message.Message):
    __slots__ = ("batch_id", "instance_id", "total_items", "processed_items", "done")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ITEMS_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    instance_id: str
    total_items: int
    processed_items: int
    done: bool
    def __init__(self, batch_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., total_items: _Optional[int] = ..., processed_items: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...

class CoordinateBatchResponse(_message.Message):
    __slots__ = ("acquired", "processor_id", "processed_items", "total_items", "completed")
    ACQUIRED_FIELD_NUMBER: _ClassVar[int]
    PROCESSOR_ID_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ITEMS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    acquired: bool
    processor_id: str
    processed_items: int
    total_items: int
    completed: bool
    def __init__(self, acquired: _Optional[bool] = ..., processor_id: _Optional[str] = ..., processed_items: _Optional[int] = ..., total_items: _Optional[int] = ..., completed: _Optional[bool] = ...) -> None: ...

class QuorumVoteRequest(_message.Message):
    __slots__ = ("decision_id", "instance_id", "value", "total_instances")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    instance_id: str
    value: str
    total_instances: int
    def __init__(self, decision_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., value: _Optional[str] = ..., total_instances: _Optional[int] = ...) -> None: ...

class QuorumVoteResponse(_message.Message):
    __slots__ = ("voted", "quorum_reached", "final_decision", "vote_count", "agreeing_votes", "total_instances")
    VOTED_FIELD_NUMBER: _ClassVar[int]
    QUORUM_REACHED_FIELD_NUMBER: _ClassVar[int]
    FINAL_DECISION_FIELD_NUMBER: _ClassVar[int]
    VOTE_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGREEING_VOTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    voted: bool
    quorum_reached: bool
    final_decision: str
    vote_count: int
    agreeing_votes: int
    total_instances: int
    def __init__(self, voted: _Optional[bool] = ..., quorum_reached: _Optional[bool] = ..., final_decision: _Optional[str] = ..., vote_count: _Optional[int] = ..., agreeing_votes: _Optional[int] = ..., total_instances: _Optional[int] = ...) -> None: ...

class GetStateRequest(_message.Message):
    __slots__ = ("recent_events", "page_size", "page_token")
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    recent_events: int
    page_size: int
    page_token: str
    def __init__(self, recent_events: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class InstanceState(_message.Message):
    __slots__ = ("instance_id", "roles", "status", "max_tasks", "held_tasks", "last_seen")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    HELD_TASKS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    status: str
    max_tasks: int
    held_tasks: int
    last_seen: _timestamp_pb2.Timestamp
    def __init__(self, instance_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., status: _Optional[str] = ..., max_tasks: _Optional[int] = ..., held_tasks: _Optional[int] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStateResponse(_message.Message):
    __slots__ = ("instances", "task_counts", "recent_events", "state_version", "next_page_token", "script_version", "key_schema_version")
    class TaskCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    TASK_COUNTS_FIELD_NUMBER: _ClassVar[int]
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    STATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[InstanceState]
    task_counts: _containers.ScalarMap[str, int]
    recent_events: _containers.RepeatedCompositeFieldContainer[_tasks_pb2.TaskEvent]
    state_version: int
    next_page_token: str
    script_version: str
    key_schema_version: int
    def __init__(self, instances: _Optional[_Iterable[_Union[InstanceState, _Mapping]]] = ..., task_counts: _Optional[_Mapping[str, int]] = ..., recent_events: _Optional[_Iterable[_Union[_tasks_pb2.TaskEvent, _Mapping]]] = ..., state_version: _Optional[int] = ..., next_page_token: _Optional[str] = ..., script_version: _Optional[str] = ..., key_schema_version: _Optional[int] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ScriptMetrics(_message.Message):
    __slots__ = ("calls", "total_ms", "errors", "average_ms")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_MS_FIELD_NUMBER: _ClassVar[int]
    calls: int
    total_ms: float
    errors: int
    average_ms: float
    def __init__(self, calls: _Optional[int] = ..., total_ms: _Optional[float] = ..., errors: _Optional[int] = ..., average_ms: _Optional[float] = ...) -> None: ...

class InstanceMetrics(_message.Message):
    __slots__ = ("instance_id", "held_tasks", "tasks_completed", "tasks_failed")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_TASKS_FIELD_NUMBER: _ClassVar[int]
    TASKS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TASKS_FAILED_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    held_tasks: int
    tasks_completed: int
    tasks_failed: int
    def __init__(self, instance_id: _Optional[str] = ..., held_tasks: _Optional[int] = ..., tasks_completed: _Optional[int] = ..., tasks_failed: _Optional[int] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("task_counts", "throughput_per_second", "average_wait_ms", "scripts", "completed_total", "failed_total", "live_instances", "stale_instances", "offline_instances", "event_stream_length", "instances")
    class TaskCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ScriptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ScriptMetrics
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ScriptMetrics, _Mapping]] = ...) -> None: ...
    TASK_COUNTS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    SCRIPTS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FAILED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIVE_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    STALE_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    EVENT_STREAM_LENGTH_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    task_counts: _containers.ScalarMap[str, int]
    throughput_per_second: float
    average_wait_ms: float
    scripts: _containers.MessageMap[str, ScriptMetrics]
    completed_total: int
    failed_total: int
    live_instances: int
    stale_instances: int
    offline_instances: int
    event_stream_length: int
    instances: _containers.RepeatedCompositeFieldContainer[InstanceMetrics]
    def __init__(self, task_counts: _Optional[_Mapping[str, int]] = ..., throughput_per_second: _Optional[float] = ..., average_wait_ms: _Optional[float] = ..., scripts: _Optional[_Mapping[str, ScriptMetrics]] = ..., completed_total: _Optional[int] = ..., failed_total: _Optional[int] = ..., live_instances: _Optional[int] = ..., stale_instances: _Optional[int] = ..., offline_instances: _Optional[int] = ..., event_stream_length: _Optional[int] = ..., instances: _Optional[_Iterable[_Union[InstanceMetrics, _Mapping]]] = ...) -> None: ...
