"""Settings: defaults, overridden by CLAUDEBENCH_* environment variables, overridden by flags.

Nothing else in the package reads the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from claudebench.data_dir import default_data_dir
from claudebench.scripts.registry import default_lua_dir


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the server; see the configuration table in the README."""

    listen: str = "127.0.0.1:50051"
    # None: start an embedded redis-server with its data under data_dir.
    redis_url: str | None = None
    # True: redis_url names a node of a Redis Cluster (as a redis+cluster:// URL does).
    redis_cluster: bool = False
    # The embedded Redis's files: one place per user, wherever the server is started from.
    data_dir: Path = field(default_factory=default_data_dir)
    lua_dir: Path = field(default_factory=default_lua_dir)
    key_prefix: str = "cb"
    # A tenant or queue: its keys are "cb:{namespace}:...", one Redis Cluster slot. None: the seed's
    # "cb:..." layout (standalone Redis only; on a cluster the namespace "default" is used).
    namespace: str | None = None
    event_retention: int = 100_000
    # Also drop task events older than this many seconds (0: keep them, the count above rules).
    event_retention_s: float = 0.0
    # WatchTasks: events buffered per subscriber before it is cut off as too slow, and how long a
    # subscriber whose filter matches nothing waits before it is sent a bookmark.
    watch_buffer_events: int = 10_000
    # WatchTasks streams one server process accepts at once (more: RESOURCE_EXHAUSTED).
    max_watch_subscribers: int = 10_000
    # The largest request or response message, in bytes (gRPC refuses larger ones with
    # RESOURCE_EXHAUSTED before any of our code runs).
    max_message_bytes: int = 4 * 1024 * 1024
    bookmark_interval_s: float = 5.0
    instance_ttl_ms: int = 30_000
    heartbeat_interval_ms: int = 10_000
    # Failure recovery: how often a replica (holding the recovery lease) looks for silent
    # instances, and how many failovers a task survives before it is FAILED.
    recovery_interval_s: float = 5.0
    max_failovers: int = 3
    # The lifecycle scheduler (promotion of due tasks, lease expiry, retention): how often the
    # replica holding the scheduler lease runs its jobs.
    scheduler_interval_s: float = 1.0
    # The lease of a task created without a timeout (s; 0: none, a holder keeps a task as long as
    # it heartbeats).
    default_task_timeout_s: float = 0.0
    # Attempts (hand-overs) of a task created without a retry policy; 1: no automatic retry. More:
    # retries with the default backoff (1 s, x2, at most 5 min, jitter 0.2).
    default_max_attempts: int = 1
    # Retention of finished tasks (s; 0: keep forever) and count caps per status (0: none).
    completed_retention_s: float = 24 * 3600.0
    failed_retention_s: float = 7 * 24 * 3600.0
    cancelled_retention_s: float = 7 * 24 * 3600.0
    max_completed_tasks: int = 0
    max_failed_tasks: int = 0
    max_cancelled_tasks: int = 0
    # How long a CreateTask idempotency key returns the task it created (s).
    idempotency_window_s: float = 24 * 3600.0
    offline_retention_ms: int = 24 * 3600 * 1000
    system_event_retention: int = 10_000
    batch_lock_ttl_ms: int = 30_000
    record_retention_ms: int = 24 * 3600 * 1000
    # Hooks: calls per instance per window, the error window and threshold that open a tool's
    # circuit, its cool-down, and what PreToolUse answers when Redis is unreachable.
    hook_rate_limit: int = 100
    hook_rate_window_s: int = 60
    hook_error_window_s: int = 60
    hook_error_threshold: int = 5
    hook_circuit_cooldown_s: int = 30
    hook_fail_open: bool = False
    # TLS for the gRPC listener (PEM files); with tls_client_ca_file, clients must present a
    # certificate signed by that CA (mutual TLS).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # Bearer tokens with roles: "token:role,..." or a file of "token role" lines; None: no auth.
    auth_tokens: str | None = None
    redis_timeout_s: float = 5.0
    # serve: how long to wait for a Redis that does not answer yet (retrying with backoff).
    redis_wait_s: float = 30.0
    redis_max_connections: int = 64
    shutdown_grace_s: float = 5.0
    max_pending_rpcs: int = 10_000
    log_level: str = "INFO"
    # "uvloop" (less Python work per call) or "asyncio" (the standard loop).
    event_loop: str = "uvloop" if sys.platform != "win32" else "asyncio"
    # Server processes sharing the listening port (SO_REUSEPORT, the kernel spreads connections):
    # the way a Python gRPC server uses more than one core.
    workers: int = 1
    # "text" or "json" (one object per line); both carry the trace and span ids of a request.
    log_format: str = "text"
    # Per-script totals are flushed to cb:metrics:lua this often (no Redis call per script call).
    metrics_flush_interval_s: float = 5.0
    # host:port of a Prometheus scrape endpoint (/metrics); None: no endpoint.
    metrics_listen: str | None = None
    # The dashboard and its JSON/SSE API (HTTP, same process and event loop as gRPC); http_enabled
    # False (--no-http): no HTTP listener.
    http_listen: str = "127.0.0.1:8080"
    http_enabled: bool = True
    # The standard OpenTelemetry variables (read under their own names, see _ENV_NAMES).
    otel_traces_exporter: str = "none"
    otel_metrics_exporter: str = "none"
    otel_exporter_otlp_protocol: str = "grpc"

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with every non-None override applied (used for command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_ENV_PREFIX = "CLAUDEBENCH_"
# Settings read under the OpenTelemetry specification's names rather than CLAUDEBENCH_*.
_ENV_NAMES = {
    "otel_traces_exporter": "OTEL_TRACES_EXPORTER",
    "otel_metrics_exporter": "OTEL_METRICS_EXPORTER",
    "otel_exporter_otlp_protocol": "OTEL_EXPORTER_OTLP_PROTOCOL",
}


def env_name(setting: str) -> str:
    """The environment variable of a setting (CLAUDEBENCH_<NAME>, or its OpenTelemetry name)."""
    return _ENV_NAMES.get(setting, _ENV_PREFIX + setting.upper())


def from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults overridden by CLAUDEBENCH_<SETTING> variables (e.g. CLAUDEBENCH_REDIS_URL)."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = env_name(f.name)
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        current = getattr(defaults, f.name)
        try:
            if isinstance(current, bool):
                values[f.name] = raw.lower() in ("1", "true", "yes")
            elif isinstance(current, int):
                values[f.name] = int(raw)
            elif isinstance(current, float):
                values[f.name] = float(raw)
            elif isinstance(current, Path) or f.name.endswith("_file"):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        except ValueError:
            raise SystemExit(f"{name}={raw!r} is not a valid value") from None
    return replace(defaults, **values)
