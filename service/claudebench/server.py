"""The gRPC server: Redis client, script executor, servicers, health and reflection (`serving.py`
runs it as the `claudebench serve` process)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.metrics import Observation

from claudebench.api.auth import auth_interceptor, parse_tokens
from claudebench.api.decoding import TolerantRegistrar
from claudebench.api.dispatch import Dispatcher
from claudebench.api.hook_service import HookService
from claudebench.api.http.app import Dashboard
from claudebench.api.queue_service import QueueService
from claudebench.api.rpc_metrics import RpcMetricsInterceptor
from claudebench.api.schedule_rpcs import TaskServiceWithSchedules
from claudebench.api.system_service import SystemService
from claudebench.api.watch import TaskWatcher
from claudebench.config import Settings
from claudebench.events.hub import EventHub
from claudebench.keys import KEY_SCHEMA_VERSION, Keyspace
from claudebench.redis_connect import (
    REDIS_FAULTS,
    connect,
    is_cluster_url,
    require_minimum_version,
)
from claudebench.redis_connect import close as close_redis
from claudebench.scheduler import lifecycle_scheduler
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.registry import load_scripts, script_version
from claudebench.store.clock import wall_clock_ms
from claudebench.store.instances import InstanceStore
from claudebench.store.recovery import FleetRecovery
from claudebench.stores import build_stores, reply_budget
from claudebench.tasks_util import cancel_and_wait
from claudebench.telemetry import ServerInstruments, Telemetry
from claudebench.tls import server_credentials
from claudebench.v1 import (
    hooks_pb2,
    hooks_pb2_grpc,
    queues_pb2,
    queues_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

log = logging.getLogger(__name__)

_HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"


def _not_health_check(details: grpc.HandlerCallDetails) -> bool:
    """The tracing filter: every call but health checks. OpenTelemetry's own filters do the same
    with several isinstance checks against typing protocols, a cost paid on every call."""
    return not details.method.startswith(_HEALTH_METHOD_PREFIX)


REDIS_HEALTH_INTERVAL_S = 2.0

SERVICE_NAMES = (
    tasks_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
    system_pb2.DESCRIPTOR.services_by_name["SystemService"].full_name,
    hooks_pb2.DESCRIPTOR.services_by_name["HookService"].full_name,
    queues_pb2.DESCRIPTOR.services_by_name["QueueService"].full_name,
)


class IncompatibleSchemaError(RuntimeError):
    """The Redis data was written by an incompatible server version."""


class ClaudebenchServer:
    """One server process: start() loads the scripts, then serves; stop() drains and closes."""

    def __init__(
        self,
        settings: Settings,
        redis_url: str,
        telemetry: Telemetry | None = None,
        share_port: bool = False,
    ) -> None:
        # share_port: SO_REUSEPORT, only for the sibling processes of --workers; otherwise a port
        # in use is an error (two unrelated servers would split the clients between them).
        self.share_port = share_port
        self.settings = settings
        self.telemetry = telemetry or Telemetry()
        instruments = ServerInstruments.create(self.telemetry.meter("claudebench"))
        self.redis_url = redis_url
        self.port = 0
        self.redis = connect(
            redis_url, timeout_s=settings.redis_timeout_s, max_connections=settings.redis_max_connections
        )
        tracing = self.telemetry.tracer_provider is not None
        measuring = self.telemetry.meter_provider is not None
        self.executor = ScriptExecutor(
            self.redis,
            load_scripts(settings.lua_dir),
            tracer=self.telemetry.tracer("claudebench.scripts") if tracing else None,
            duration=instruments.script_duration if measuring else None,
        )
        namespace = settings.namespace
        if namespace is None and is_cluster_url(redis_url):
            namespace = "default"  # a cluster needs every key of a script in one slot
        self._keys = Keyspace.of(settings.key_prefix, namespace)
        self.event_stream_length = 0
        self.hub = EventHub(
            redis_url,
            self._keys.events,
            redis_timeout_s=settings.redis_timeout_s,
            query_client=self.redis,
        )
        self.health = health.aio.HealthServicer()
        self._background: list[asyncio.Task[None]] = []
        self._server: grpc.aio.Server | None = None
        self.dispatcher: Dispatcher | None = None
        meter = self.telemetry.meter("claudebench")
        meter.create_observable_gauge(
            "claudebench.watch.subscribers",
            callbacks=[lambda _: [Observation(self.hub.subscriber_count)]],
            description="WatchTasks streams open on this server",
        )
        meter.create_observable_gauge(
            "claudebench.events.stream_length",
            callbacks=[lambda _: [Observation(self.event_stream_length)]],
            description="Entries in the task event stream (sampled every few seconds)",
        )
        # Interceptors only for what is configured: each costs Python work on every call.
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if settings.auth_tokens:
            # First: an unauthenticated call does no other work.
            interceptors.append(auth_interceptor(settings.auth_tokens, self._instance_owners))
        if tracing:
            # One SERVER span per call, continuing the caller's traceparent (health excluded).
            interceptors.append(
                aio_server_interceptor(
                    tracer_provider=self.telemetry.tracer_provider,
                    filter_=_not_health_check,
                )
            )
        if measuring:
            interceptors.append(RpcMetricsInterceptor(instruments.rpc_duration))
        self._interceptors = interceptors

    async def start(self) -> int:
        """Load every script into Redis (failing fast), then serve. Returns the bound port. A start
        that fails (Redis unreachable, wrong credentials, another key schema) leaves nothing open."""
        try:
            return await self._start()
        except BaseException:
            await cancel_and_wait(self._background)
            await self.hub.close()
            if self._server is not None:
                await self._server.stop(0)
            await close_redis(self.redis)
            raise

    async def _start(self) -> int:
        await require_minimum_version(self.redis)
        await self._claim_key_schema()
        shas = await self.executor.load_all()
        log.info(
            "loaded %d Lua scripts, version %s: %s",
            len(shas),
            self.script_version,
            ", ".join(f"{n}={s[:12]}" for n, s in shas.items()),
        )
        settings = self.settings
        keys = self._keys
        stores = build_stores(self.executor, self.redis, keys, settings)
        tasks, instances, coordination = stores.tasks, stores.instances, stores.coordination
        # Created only now: a gRPC server object that never started cannot be cleaned up quietly.
        server = self._server = grpc.aio.server(
            interceptors=self._interceptors,
            options=[
                # gRPC core cancels (status CANCELLED, misleading to clients) every request beyond
                # 1000 waiting for the application; a burst from many workers easily exceeds that.
                ("grpc.server.max_pending_requests", self.settings.max_pending_rpcs),
                ("grpc.server.max_pending_requests_hard_limit", 2 * self.settings.max_pending_rpcs),
                ("grpc.max_receive_message_length", self.settings.max_message_bytes),
                ("grpc.max_send_message_length", self.settings.max_message_bytes),
                ("grpc.so_reuseport", 1 if self.share_port else 0),
            ],
        )
        self.recovery = FleetRecovery(instances, coordination)
        self.scheduler = lifecycle_scheduler(coordination, stores.lifecycle, settings.scheduler_interval_s)
        await self.hub.start()
        watcher = TaskWatcher(
            self.hub,
            self.redis,
            keys.events,
            settings.watch_buffer_events,
            settings.max_watch_subscribers,
            settings.bookmark_interval_s,
            reply_budget=reply_budget(settings),
        )
        self.dispatcher = Dispatcher(self.hub)
        task_service = TaskServiceWithSchedules(
            tasks, watcher, instances, self.dispatcher, schedules=stores.schedules
        )
        self.scheduler.register("schedules", task_service.fire_due_schedules)
        system_service = SystemService(
            instances,
            tasks,
            coordination,
            self.recovery,
            settings.instance_ttl_ms,
            settings.heartbeat_interval_ms,
            self.script_version,
        )
        # Through the registrar: an undecodable request answers INVALID_ARGUMENT (not UNKNOWN).
        registrar = cast(grpc.aio.Server, TolerantRegistrar(server))
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(task_service, registrar)
        system_pb2_grpc.add_SystemServiceServicer_to_server(system_service, registrar)
        queue_service = QueueService(
            stores.queues,
            self.dispatcher,
        )
        queues_pb2_grpc.add_QueueServiceServicer_to_server(queue_service, registrar)
        # The servicers the dashboard's HTTP API calls in-process (see api/http/app.py).
        self.services: dict[str, object] = {
            "TaskService": task_service,
            "SystemService": system_service,
            "QueueService": queue_service,
        }
        self.instances: InstanceStore = instances
        hooks_pb2_grpc.add_HookServiceServicer_to_server(
            HookService(stores.hooks, settings.hook_fail_open), registrar
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, registrar)
        # As reflection.enable_server_reflection does, through the registrar (a bad request body
        # answers INVALID_ARGUMENT here too).
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
            reflection.aio.ReflectionServicer((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)),
            registrar,
        )
        try:
            self.port = (
                server.add_secure_port(settings.listen, server_credentials(settings))
                if settings.tls_cert_file
                else server.add_insecure_port(settings.listen)
            )
        except RuntimeError:  # gRPC's "Failed to bind": in use, or an address not of this host
            self.port = 0
        if self.port == 0:
            raise OSError(
                f"cannot listen on {settings.listen}: the port is in use or the address is not this host's"
            )
        await server.start()
        # SERVING only now that the scripts are loaded and the servicers are in place.
        await self._set_serving(True)
        self._background = [
            asyncio.create_task(
                self.recovery.run_forever(settings.recovery_interval_s, settings.instance_ttl_ms),
                name="claudebench-recovery",
            ),
            asyncio.create_task(self.scheduler.run_forever(), name="claudebench-scheduler"),
            asyncio.create_task(self._watch_redis(), name="claudebench-redis-health"),
            asyncio.create_task(self._flush_metrics_forever(), name="claudebench-metrics"),
        ]
        if settings.event_retention_s > 0:
            self._background.append(
                asyncio.create_task(self._trim_events_forever(), name="claudebench-event-retention")
            )
        return self.port

    async def _instance_owners(self, ids: Sequence[str]) -> list[str | None]:
        return await self.instances.owners(ids)

    def dashboard(self) -> Dashboard:
        """The dashboard over this server's servicers, with the same tokens as gRPC."""
        tokens = parse_tokens(self.settings.auth_tokens) if self.settings.auth_tokens else None
        return Dashboard(self.services, tokens, self.instances.leader)

    @property
    def script_version(self) -> str:
        return script_version(dict(self.executor.scripts))

    async def _claim_key_schema(self) -> None:
        """Record our key-schema version in an empty Redis; refuse to serve data of another one."""
        key = self._keys.schema_version
        await self.redis.set(key, KEY_SCHEMA_VERSION, nx=True)
        stored = cast(str | None, await self.redis.get(key))
        if stored != str(KEY_SCHEMA_VERSION):
            raise IncompatibleSchemaError(
                f"Redis holds claudebench data in key-schema version {stored} under prefix "
                f"'{self._keys.prefix}', but this server uses version {KEY_SCHEMA_VERSION}: migrate "
                "the data, or use another Redis database or key prefix"
            )

    async def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def _flush_metrics(self) -> None:
        """Per-script totals to cb:metrics:lua (one pipelined write), and the stream length."""
        await self.executor.stats.flush(self.redis, self._keys.script_metrics)
        self.event_stream_length = int(await self.redis.xlen(self._keys.events))

    async def _flush_metrics_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metrics_flush_interval_s)
            try:
                await self._flush_metrics()
            except REDIS_FAULTS as exc:
                log.warning("metrics flush postponed: %s", exc)

    async def _trim_events_forever(self) -> None:
        """Age retention: every tenth of the age (at most 5 s), XTRIM MINID ~ (now - age). Every
        replica does it; trimming is idempotent. Like MAXLEN ~, Redis drops whole stream nodes, so
        entries up to one node (100 entries) past the age may stay a little longer."""
        age_ms = int(self.settings.event_retention_s * 1000)
        while True:
            await asyncio.sleep(min(5.0, self.settings.event_retention_s / 10))
            try:
                oldest_kept = wall_clock_ms() - age_ms
                await self.redis.xtrim(self._keys.events, minid=f"{oldest_kept}-0", approximate=True)
            except REDIS_FAULTS as exc:
                log.warning("event retention postponed: %s", exc)

    async def _redis_ready(self, was_serving: bool) -> bool:
        """Redis answers, and (when it comes back) holds our key schema and our scripts: a Redis
        replaced by an empty one is claimed and loaded again; one holding another schema is not
        served (NOT_SERVING, logged)."""
        try:
            await self.redis.ping()
            if not was_serving:
                await self._claim_key_schema()
                await self.executor.load_all()
        except REDIS_FAULTS:
            return False
        except IncompatibleSchemaError as exc:
            log.error("not serving: %s", exc)
            return False
        return True

    async def _watch_redis(self) -> None:
        """grpc.health.v1 tells the truth: NOT_SERVING while Redis does not answer."""
        serving = True
        while True:
            await asyncio.sleep(REDIS_HEALTH_INTERVAL_S)
            ok = await self._redis_ready(serving)
            if ok != serving:
                serving = ok
                log.warning(
                    "Redis is %s; health is now %s",
                    "back" if ok else "unreachable",
                    "SERVING" if ok else "NOT_SERVING",
                )
                await self._set_serving(ok)

    async def stop(self, grace_s: float | None = None) -> None:
        """Report NOT_SERVING, let calls in flight finish within the grace period, close Redis."""
        await cancel_and_wait(self._background)
        try:
            await self._flush_metrics()
        except REDIS_FAULTS as exc:
            log.warning("final metrics flush failed: %s", exc)
        await self.health.enter_graceful_shutdown()
        # Streams end first, with UNAVAILABLE and their resume cursor, instead of hanging until
        # the grace period runs out.
        if self.dispatcher is not None:
            self.dispatcher.close()  # Work streams and long polls: UNAVAILABLE, reconnect
        await self.hub.close()
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace_s if grace_s is None else grace_s)
        await close_redis(self.redis)
