"""Traces, metrics and logs, with real exporters where it matters: an in-memory span exporter for
the shape of traces, a real OTLP/gRPC and OTLP/HTTP receiver for export, a real Prometheus scrape."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from redis import exceptions as redis_errors

from claudebench.config import Settings
from claudebench.keys import Keyspace
from claudebench.logs import configure_logging
from claudebench.ports import free_port
from claudebench.scripts.executor import ScriptExecutor
from claudebench.scripts.registry import load_scripts
from claudebench.server import ClaudebenchServer
from claudebench.telemetry import Telemetry, build_telemetry
from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel, serving

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_SPAN_ID = 0x00F067AA0BA902B7


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    settings: Settings, spans: InMemorySpanExporter, redis_client: aioredis.Redis
) -> AsyncIterator[ClaudebenchServer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    assert settings.redis_url is not None
    app = ClaudebenchServer(settings, settings.redis_url, Telemetry(tracer_provider=provider))
    await app.start()
    yield app
    await app.stop(grace_s=0)


@pytest.fixture
async def stubs(traced: ClaudebenchServer) -> AsyncIterator[tuple[Any, Any, grpc.aio.Channel]]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{traced.port}")
    yield tasks_pb2_grpc.TaskServiceStub(channel), system_pb2_grpc.SystemServiceStub(channel), channel
    await close_channel(channel)


def server_span(finished: tuple[ReadableSpan, ...], method: str) -> ReadableSpan:
    (span,) = [s for s in finished if s.kind == SpanKind.SERVER and s.name.endswith("/" + method)]
    return span


def script_children(finished: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        s
        for s in finished
        if s.kind == SpanKind.CLIENT and s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


async def test_every_rpc_span_has_its_script_spans_as_children(
    stubs: tuple[Any, Any, grpc.aio.Channel], spans: InMemorySpanExporter
) -> None:
    tasks, system, _ = stubs
    await system.Register(system_pb2.RegisterRequest(instance_id="w1", roles=["worker"]))
    created = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="traced"))).task
    await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w1"))
    await tasks.CompleteTask(
        tasks_pb2.CompleteTaskRequest(
            task_id=created.id, worker_id="w1", result=struct_pb2.Value(bool_value=True)
        )
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await tasks.CompleteTask(tasks_pb2.CompleteTaskRequest(task_id="t-none", worker_id="w1", error="x"))
    await system.Heartbeat(system_pb2.HeartbeatRequest(instance_id="w1"))
    await system.GetMetrics(system_pb2.GetMetricsRequest())
    finished = spans.get_finished_spans()

    register = server_span(finished, "Register")
    assert [s.name for s in script_children(finished, register)] == [
        "EVALSHA INSTANCE_REGISTER",
        "EVALSHA AUTO_ASSIGN_TASKS",
        "EVALSHA GOSSIP_HEALTH_UPDATE",
        "EVALSHA SYNC_GLOBAL_STATE",
        "EVALSHA AGGREGATE_GLOBAL_METRICS",
    ]
    for method, script in [
        ("CreateTask", "TASK_CREATE"),
        ("ClaimTask", "TASK_CLAIM"),
        ("Heartbeat", "INSTANCE_HEARTBEAT"),
        ("GetMetrics", "AGGREGATE_GLOBAL_METRICS"),
    ]:
        rpc = server_span(finished, method)
        assert rpc.attributes is not None
        assert rpc.attributes["rpc.system"] == "grpc"
        assert rpc.attributes["rpc.method"] == method
        (child,) = script_children(finished, rpc)
        assert child.name == f"EVALSHA {script}"
        assert child.context is not None
        assert rpc.context is not None
        assert child.context.trace_id == rpc.context.trace_id
        attributes = dict(child.attributes or {})
        assert attributes["db.system.name"] == "redis"
        assert attributes["db.operation.name"] == "EVALSHA"
        assert attributes["db.stored_procedure.name"] == script
        assert attributes["server.address"] == "127.0.0.1"
        assert isinstance(attributes["server.port"], int)
        assert len(str(attributes["db.redis.script_sha"])) == 40
        assert attributes["claudebench.script.result"] == "OK"

    completions = [s for s in finished if s.name == "EVALSHA TASK_COMPLETE"]
    assert [dict(s.attributes or {})["claudebench.script.result"] for s in completions] == ["OK", "NOT_FOUND"]
    # A domain outcome is a result, not a span error.
    assert all(s.status.status_code != StatusCode.ERROR for s in completions)


async def test_the_callers_trace_continues_into_the_server(
    stubs: tuple[Any, Any, grpc.aio.Channel], spans: InMemorySpanExporter
) -> None:
    tasks, _, _ = stubs
    traceparent = f"00-{TRACE_ID:032x}-{PARENT_SPAN_ID:016x}-01"
    await tasks.CreateTask(
        tasks_pb2.CreateTaskRequest(text="from a mesh"), metadata=(("traceparent", traceparent),)
    )
    finished = spans.get_finished_spans()
    rpc = server_span(finished, "CreateTask")
    (script,) = script_children(finished, rpc)
    assert rpc.context is not None
    assert rpc.parent is not None
    assert script.context is not None
    assert rpc.context.trace_id == TRACE_ID == script.context.trace_id
    assert rpc.parent.span_id == PARENT_SPAN_ID


async def test_a_caller_that_does_not_sample_gets_no_spans_at_all(
    stubs: tuple[Any, Any, grpc.aio.Channel], spans: InMemorySpanExporter
) -> None:
    """The caller's sampling decision (flags 00) holds for the RPC span and its script spans."""
    tasks, _, _ = stubs
    unsampled = f"00-{TRACE_ID:032x}-{PARENT_SPAN_ID:016x}-00"
    await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="quiet"), metadata=(("traceparent", unsampled),))
    assert spans.get_finished_spans() == ()
    await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="loud"))  # no caller: a sampled root
    assert {s.name for s in spans.get_finished_spans()} == {
        "/claudebench.v1.TaskService/CreateTask",
        "EVALSHA TASK_CREATE",
    }


async def test_health_is_not_traced_and_a_stream_is_one_span(
    stubs: tuple[Any, Any, grpc.aio.Channel], traced: ClaudebenchServer, spans: InMemorySpanExporter
) -> None:
    tasks, _, channel = stubs
    health: Any = health_pb2_grpc.HealthStub(channel)
    await health.Check(health_pb2.HealthCheckRequest())
    call = tasks.WatchTasks(tasks_pb2.WatchTasksRequest(after_event_id="0"))
    for i in range(3):
        await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}"))
    for _ in range(3):
        await asyncio.wait_for(call.read(), 5)
    call.cancel()
    for _ in range(100):
        if traced.hub.subscriber_count == 0:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)

    names = [s.name for s in spans.get_finished_spans()]
    assert not any("Health" in n for n in names)
    assert names.count("/claudebench.v1.TaskService/WatchTasks") == 1


async def test_noscript_reload_and_redis_faults_are_visible(
    stubs: tuple[Any, Any, grpc.aio.Channel], spans: InMemorySpanExporter, redis_client: aioredis.Redis
) -> None:
    tasks, _, _ = stubs
    await redis_client.script_flush()
    await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="after a flush"))
    (reloaded,) = [s for s in spans.get_finished_spans() if s.name == "EVALSHA TASK_CREATE"]
    assert [e.name for e in reloaded.events] == ["NOSCRIPT: script reloaded"]
    assert dict(reloaded.attributes or {})["claudebench.script.reloaded"] is True


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    return monkeypatch


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.names: list[str] = []

    async def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.names.extend(span.name for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


async def create_one_task_and_flush(settings: Settings, telemetry: Telemetry) -> None:
    """Serve with `telemetry`, make one CreateTask call, stop, and flush the exporters."""
    try:
        async with serving(settings, telemetry) as (_, channel):
            await tasks_pb2_grpc.TaskServiceStub(channel).CreateTask(
                tasks_pb2.CreateTaskRequest(text="exported")
            )
    finally:
        # The exporters are synchronous: flush them off the event loop the receivers may run on.
        await asyncio.to_thread(telemetry.shutdown)


async def export_to_grpc_collector(
    settings: Settings,
    otel_env: pytest.MonkeyPatch,
    add_servicer: Callable[[Any, grpc.aio.Server], None],
    receiver: Any,
    telemetry: Callable[[], Telemetry],
) -> None:
    """Start an OTLP/gRPC collector serving `receiver`, point the exporters at it, then serve one
    CreateTask with the telemetry `telemetry()` builds and flush it."""
    collector = grpc.aio.server()
    add_servicer(receiver, collector)
    port = collector.add_insecure_port("127.0.0.1:0")
    await collector.start()
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    otel_env.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    try:
        await create_one_task_and_flush(settings, telemetry())
    finally:
        await collector.stop(0)


async def test_spans_reach_a_real_otlp_grpc_receiver(
    settings: Settings, redis_client: aioredis.Redis, otel_env: pytest.MonkeyPatch
) -> None:
    receiver = _Receiver()
    await export_to_grpc_collector(
        settings,
        otel_env,
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server,
        receiver,
        lambda: build_telemetry("otlp", "none", "grpc", None),
    )
    assert "EVALSHA TASK_CREATE" in receiver.names
    assert "/claudebench.v1.TaskService/CreateTask" in receiver.names


class _MetricsReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.points: dict[str, list[dict[str, str]]] = {}

    async def Export(self, request: Any, context: Any) -> Any:
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.histogram.data_points:
                        labels = {a.key: a.value.string_value for a in point.attributes}
                        self.points.setdefault(metric.name, []).append(labels)
        return metrics_service_pb2.ExportMetricsServiceResponse()


async def test_metrics_reach_a_real_otlp_grpc_receiver(
    settings: Settings, redis_client: aioredis.Redis, otel_env: pytest.MonkeyPatch
) -> None:
    receiver = _MetricsReceiver()
    await export_to_grpc_collector(
        settings,
        otel_env,
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server,
        receiver,
        lambda: build_telemetry("none", "otlp", "grpc", None),
    )
    assert {"script": "TASK_CREATE", "result": "OK"} in receiver.points["claudebench.script.duration"]
    assert any(p.get("rpc.method") == "CreateTask" for p in receiver.points["rpc.server.duration"])


async def test_spans_reach_a_real_otlp_http_receiver(
    settings: Settings, redis_client: aioredis.Redis, otel_env: pytest.MonkeyPatch
) -> None:
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    received.extend(span.name for span in scope_spans.spans)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

        def log_message(self, *args: Any) -> None:
            pass

    http = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{http.server_port}")
    try:
        await create_one_task_and_flush(settings, build_telemetry("otlp", "none", "http/protobuf", None))
    finally:
        http.shutdown()
        http.server_close()
    assert "EVALSHA TASK_CREATE" in received


async def test_prometheus_endpoint_and_script_totals(
    settings: Settings, redis_client: aioredis.Redis, keys: Keyspace
) -> None:
    port = free_port()
    telemetry = build_telemetry("none", "none", "grpc", f"127.0.0.1:{port}")
    assert settings.redis_url is not None
    app = ClaudebenchServer(
        dataclasses.replace(settings, metrics_flush_interval_s=0.1), settings.redis_url, telemetry
    )
    await app.start()
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        for i in range(7):
            await stub.CreateTask(tasks_pb2.CreateTaskRequest(text=f"t{i}"))
        await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="dup", task_id="same"))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.CreateTask(tasks_pb2.CreateTaskRequest(text="dup", task_id="same"))
        await close_channel(channel)
        scrape = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        )
        for _ in range(50):
            if await redis_client.hget(keys.script_metrics, "TASK_CREATE:calls") == "9":
                break
            await asyncio.sleep(0.05)
    finally:
        await app.stop(grace_s=0)
        telemetry.shutdown()

    assert "claudebench_script_duration_milliseconds_count{" in scrape
    assert 'script="TASK_CREATE"' in scrape
    assert 'result="ALREADY_EXISTS"' in scrape
    assert 'rpc_method="CreateTask"' in scrape
    assert "claudebench_watch_subscribers" in scrape
    totals = await redis_client.hgetall(keys.script_metrics)
    assert totals["TASK_CREATE:calls"] == "9"
    assert totals["TASK_CREATE:errors"] == "0"
    assert float(totals["TASK_CREATE:totalMs"]) > 0


def test_json_logs_carry_trace_and_span_ids(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json")
        tracer = TracerProvider().get_tracer("test")
        with tracer.start_as_current_span("request") as span:
            logging.getLogger("claudebench.test").info("inside %s", "a request")
        logging.getLogger("claudebench.test").info("outside")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    context = span.get_span_context()
    assert inside["message"] == "inside a request"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert (outside["trace_id"], outside["span_id"]) == ("", "")


async def test_a_redis_fault_marks_the_script_span_as_an_error(spans: InMemorySpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    dead = aioredis.Redis(port=free_port(), socket_connect_timeout=0.5, decode_responses=True)
    executor = ScriptExecutor(dead, load_scripts(), tracer=provider.get_tracer("test"))
    with pytest.raises(redis_errors.ConnectionError):
        await executor.run(
            "LEASE_ACQUIRE", keys={"lease": "cb:lease:x"}, args={"owner": "me", "ttl_ms": 1000}
        )
    await dead.aclose()
    (span,) = spans.get_finished_spans()
    assert span.name == "EVALSHA LEASE_ACQUIRE"
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ConnectionError"
    assert [e.name for e in span.events] == ["exception"]
