"""The stores of one server process, each built from the server's settings (server.py wires them to
the servicers, the scheduler and recovery)."""

from __future__ import annotations

from dataclasses import dataclass

from claudebench.api import validation
from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.redis_connect import RedisClient
from claudebench.scheduler import lifecycle_settings
from claudebench.scripts.executor import ScriptExecutor
from claudebench.store.coordination import CoordinationSettings, CoordinationStore
from claudebench.store.hooks import HookSettings, HookStore
from claudebench.store.instances import FleetSettings, InstanceStore
from claudebench.store.lifecycle import LifecycleStore
from claudebench.store.queues import QueueSettings, QueueStore
from claudebench.store.schedules import ScheduleSettings, ScheduleStore
from claudebench.store.tasks import REPLY_ENVELOPE_BYTES, TaskStore, TaskStoreSettings


def reply_budget(settings: Settings) -> int:
    """The bytes a reply's tasks (or events, or instances) may take: the message limit minus room
    for the rest of the reply."""
    return settings.max_message_bytes - REPLY_ENVELOPE_BYTES


@dataclass(frozen=True, slots=True)
class Stores:
    tasks: TaskStore
    instances: InstanceStore
    coordination: CoordinationStore
    lifecycle: LifecycleStore
    queues: QueueStore
    schedules: ScheduleStore
    hooks: HookStore


def build_stores(executor: ScriptExecutor, client: RedisClient, keys: Keyspace, settings: Settings) -> Stores:
    tasks = TaskStore(
        executor,
        client,
        keys,
        TaskStoreSettings(
            settings.event_retention,
            settings.instance_ttl_ms,
            int(settings.default_task_timeout_s * 1000),
            settings.default_max_attempts,
            int(settings.idempotency_window_s * 1000),
            reply_budget=reply_budget(settings),
            metadata_max_bytes=validation.MAX_METADATA_BYTES,
            metadata_max_keys=validation.MAX_METADATA_KEYS,
        ),
    )
    instances = InstanceStore(
        executor,
        client,
        keys,
        FleetSettings(
            instance_ttl_ms=settings.instance_ttl_ms,
            event_retention=settings.event_retention,
            system_event_retention=settings.system_event_retention,
            max_failovers=settings.max_failovers,
            offline_retention_ms=settings.offline_retention_ms,
        ),
    )
    coordination = CoordinationStore(
        executor,
        client,
        keys,
        CoordinationSettings(
            instance_ttl_ms=settings.instance_ttl_ms,
            system_event_retention=settings.system_event_retention,
            batch_lock_ttl_ms=settings.batch_lock_ttl_ms,
            record_retention_ms=settings.record_retention_ms,
        ),
    )
    hooks = HookStore(
        executor,
        client,
        keys,
        HookSettings(
            rate_limit=settings.hook_rate_limit,
            rate_window_ms=settings.hook_rate_window_s * 1000,
            error_window_ms=settings.hook_error_window_s * 1000,
            error_threshold=settings.hook_error_threshold,
            cooldown_ms=settings.hook_circuit_cooldown_s * 1000,
            system_event_retention=settings.system_event_retention,
        ),
    )
    return Stores(
        tasks=tasks,
        instances=instances,
        coordination=coordination,
        lifecycle=LifecycleStore(executor, client, keys, lifecycle_settings(settings)),
        queues=QueueStore(executor, client, keys, QueueSettings(settings.system_event_retention)),
        schedules=ScheduleStore(
            executor, client, keys, ScheduleSettings.for_scheduler(settings.scheduler_interval_s)
        ),
        hooks=hooks,
    )
