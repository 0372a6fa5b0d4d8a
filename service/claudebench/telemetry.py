"""OpenTelemetry wiring: tracer and meter providers, exporters chosen by the standard OTEL_*
settings, a Prometheus scrape endpoint, and the server's own instruments.

Off by default: with no exporter configured the OpenTelemetry API stays a no-op and costs little.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from claudebench import __version__

log = logging.getLogger(__name__)

# Durations in milliseconds: script calls take about one, and bucket edges in ms read naturally.
DURATION_BUCKETS_MS = (0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)


def _span_exporter(kind: str, protocol: str) -> SpanExporter:
    if kind == "console":
        return ConsoleSpanExporter()
    if kind != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r}: use otlp, console or none")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol in ("http/protobuf", "http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPSpanExporter,
        )

        return HTTPSpanExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use grpc or http/protobuf")


def _otlp_metric_reader(protocol: str) -> MetricReader:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return PeriodicExportingMetricReader(OTLPMetricExporter())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )

    return PeriodicExportingMetricReader(HTTPMetricExporter())


@dataclass
class Telemetry:
    """The providers a server uses (None: the global, by default no-op, ones)."""

    tracer_provider: trace.TracerProvider | None = None
    meter_provider: metrics.MeterProvider | None = None
    _closers: list[Any] = field(default_factory=list)

    def tracer(self, name: str) -> trace.Tracer:
        return trace.get_tracer(name, __version__, self.tracer_provider)

    def meter(self, name: str) -> metrics.Meter:
        return metrics.get_meter(name, __version__, self.meter_provider)

    def shutdown(self) -> None:
        """Flush what is buffered and stop exporting (and the scrape endpoint)."""
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                log.exception("telemetry shutdown step failed")
        self._closers.clear()


def build_telemetry(
    traces_exporter: str,
    metrics_exporter: str,
    otlp_protocol: str,
    metrics_listen: str | None,
) -> Telemetry:
    """Providers from the settings: exporters for traces (otlp, console, none; comma-separated),
    metrics over OTLP, and a Prometheus endpoint on metrics_listen (host:port)."""
    telemetry = Telemetry()
    resource = Resource.create({"service.name": "claudebench", "service.version": __version__})
    kinds = [k.strip() for k in traces_exporter.split(",") if k.strip() and k.strip() != "none"]
    if kinds:
        # The sampler comes from OTEL_TRACES_SAMPLER / _ARG, read by the SDK itself.
        tracer_provider = TracerProvider(resource=resource)
        for kind in kinds:
            exporter = _span_exporter(kind, otlp_protocol)
            processor = SimpleSpanProcessor(exporter) if kind == "console" else BatchSpanProcessor(exporter)
            tracer_provider.add_span_processor(processor)
        telemetry.tracer_provider = tracer_provider
        telemetry._closers.append(tracer_provider.shutdown)
    readers: list[MetricReader] = []
    if metrics_exporter not in ("none", ""):
        if metrics_exporter != "otlp":
            raise ValueError(f"OTEL_METRICS_EXPORTER={metrics_exporter!r}: use otlp or none")
        readers.append(_otlp_metric_reader(otlp_protocol))
    if metrics_listen:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        readers.append(PrometheusMetricReader(registry=registry))
        host, _, port = metrics_listen.rpartition(":")
        server, thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)

        def stop_scrape_endpoint() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        telemetry._closers.append(stop_scrape_endpoint)
    if readers:
        meter_provider = MeterProvider(metric_readers=readers, resource=resource)
        telemetry.meter_provider = meter_provider
        telemetry._closers.append(meter_provider.shutdown)
    return telemetry


@dataclass
class ServerInstruments:
    """The server's metrics instruments."""

    script_duration: metrics.Histogram
    rpc_duration: metrics.Histogram

    @classmethod
    def create(cls, meter: metrics.Meter) -> ServerInstruments:
        return cls(
            script_duration=meter.create_histogram(
                "claudebench.script.duration",
                unit="ms",
                description="Lua script calls (EVALSHA), by script and result code",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS_MS,
            ),
            rpc_duration=meter.create_histogram(
                "rpc.server.duration",
                unit="ms",
                description="gRPC calls served, by method and status code",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS_MS,
            ),
        )
