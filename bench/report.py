"""BENCHMARKS.md from one run's results: absolute figures and ratios against the run's ceilings."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _ratio(value: float | None, ceiling: float | None) -> str:
    if not value or not ceiling:
        return "n/a"
    return f"{value / ceiling:.2f}"


def _peer_lines(peers: dict[str, Any], unary: float, batched: float) -> list[str]:
    """The peers measured in the same run, each against its target."""
    bull, arq = peers.get("bullmq", {}), peers.get("arq", {})
    lines = ["Peers on the same machine, each on a fresh redis-server of the same binary:", ""]
    if "jobs_per_s" in bull:
        lines.append(
            f"* BullMQ (Node, add -> worker of concurrency 50 -> done): {bull['jobs_per_s']} jobs/s; "
            f"batched lifecycle / BullMQ = {_ratio(batched, bull['jobs_per_s'])} (target >= 1)."
        )
    else:
        lines.append(f"* BullMQ: skipped ({bull.get('skipped', 'not measured')}).")
    if "jobs_per_s" in arq:
        lines.append(
            f"* arq (Python, burst worker, max_jobs 50): {arq['jobs_per_s']} jobs/s; unary lifecycle / "
            f"arq = {_ratio(unary, arq['jobs_per_s'])} (target >= 2)."
        )
    else:
        lines.append(f"* arq: skipped ({arq.get('skipped', 'not measured')}).")
    return [*lines, ""]


def _worker_lines(workers: dict[str, Any] | None) -> list[str]:
    """The lifecycle through Python `Worker`s (bench/workers.py): Work stream vs long polls."""
    if not workers:
        return []
    stream, poll = workers["lifecycle_stream"], workers["lifecycle_long_poll"]
    lines = [
        "Through Python `Worker`s as users write them (producers: one CreateTask per task; "
        f"{stream['workers']} workers of capacity {stream['capacity']}, {stream['producers']} producers):",
        "",
        "| workers receive tasks by | tasks/s | pickup p50 ms | pickup p99 ms |",
        "|---|---|---|---|",
    ]
    for life, pickup in ((stream, workers["pickup_stream"]), (poll, workers["pickup_long_poll"])):
        lines.append(f"| {life['mode']} | {life['tasks_per_s']} | {pickup['p50_ms']} | {pickup['p99_ms']} |")
    lines += [
        "",
        "Pickup: CreateTask returned -> handler started, one task at a time at low load "
        "(target for the stream: p50 <= 5 ms, p99 <= 20 ms).",
        "",
    ]
    return lines


def _process_lines(processes: dict[str, Any] | None) -> list[str]:
    if not processes:
        return []
    return [
        "## Server processes (`--workers`)",
        "",
        f"CreateTask at 16 in flight over 4 connections: {processes['workers_1']}/s with one server "
        f"process, {processes['workers_2']}/s with two sharing the port = {processes['gain']} x "
        "(client, servers and Redis share the same 2 cores).",
        "",
    ]


def write_report(results: dict[str, Any], path: Path) -> None:
    c = results["ceilings"]
    evalsha, echo, stream = c["evalsha"], c["echo"], c["stream"]
    lines = [
        "# Benchmarks",
        "",
        f"Run {results['date']} on {results['machine']['cpus']} CPUs, Python {results['machine']['python']}; "
        f"{results['seconds_per_measurement']} s per measurement. Regenerate with `python -m bench` "
        "(raw figures in `bench/results/`). Client and server share this machine, as do Redis and the "
        "ceiling servers; every ratio is against a ceiling measured in the same run.",
        "",
        "## Ceilings (bare grpc.aio, no claudebench)",
        "",
        "| ceiling | p50 ms | p99 ms | calls/s at 1 in flight | calls/s at 16 in flight |",
        "|---|---|---|---|---|",
        f"| unary echo | {echo['p50_ms']} | {echo['p99_ms']} | {echo['calls_per_s_1']} | "
        f"{echo['calls_per_s_16']} |",
        f"| unary + one EVALSHA | {evalsha['p50_ms']} | {evalsha['p99_ms']} | {evalsha['calls_per_s_1']} | "
        f"{evalsha['calls_per_s_16']} |",
        f"| server streaming to one subscriber | | | {stream['msgs_per_s']} msgs/s | |",
        "",
        "## Per RPC",
        "",
        "Targets: p50 <= 1.25 x the EVALSHA ceiling's p50; throughput at 16 in flight >= 0.85 x its ceiling. "
        "Each RPC's ratios are against the EVALSHA ceiling measured just before it (its figures in the "
        "last two columns).",
        "",
        "| RPC | p50 ms | p99 ms | p999 ms | p50 / ceiling | calls/s @16 | @16 / ceiling | calls/s @64 "
        "| ceiling p50 ms | ceiling calls/s @16 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["rpcs"].items():
        paired = r.get("ceiling", evalsha)  # runs before 2026-11-27 22:00 measured it once, first
        lines.append(
            f"| {name} | {r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} | "
            f"{_ratio(r['p50_ms'], paired['p50_ms'])} | {r['calls_per_s_16']} | "
            f"{_ratio(r['calls_per_s_16'], paired['calls_per_s_16'])} | {r['calls_per_s_64']} | "
            f"{paired['p50_ms']} | {paired['calls_per_s_16']} |"
        )
    life = results["lifecycle_unary"]
    batched = results["lifecycle_batched"]
    ev = results["events"]
    tr = results["tracing"]
    lines += [
        "",
        "## Task lifecycle (unary: CreateTask -> ClaimTask -> CompleteTask, one task per call)",
        "",
        f"{life['tasks_per_s']} tasks/s with {life['workers']} workers (3 RPCs per task).",
        "",
        f"Batched (CreateTasks, ClaimTask max_tasks={batched['batch']}, CompleteTasks): "
        f"{batched['tasks_per_s']} tasks/s with {batched['workers']} workers.",
        "",
        *_worker_lines(results.get("workers")),
        *_peer_lines(results.get("peers", {}), life["tasks_per_s"], batched["tasks_per_s"]),
        *_process_lines(results.get("processes")),
        "## Cost growth",
        "",
        "Target: ClaimTask p50 at 10^6 pending <= 1.2 x at 10^3.",
        "",
        "| pending tasks | CreateTask p50 ms | ClaimTask p50 ms |",
        "|---|---|---|",
        *(
            f"| {n} | {g['create_p50_ms']} | {g['claim_p50_ms']} |"
            for n, g in results["cost_growth"]["pending"].items()
        ),
        "",
        f"Redis memory per task (10^6 small tasks, their indexes and events): "
        f"{results['cost_growth']['bytes_per_task']} bytes.",
        "",
        "| instances | GetState p50 ms | GetMetrics p50 ms | CheckHealth p50 ms |",
        "|---|---|---|---|",
        *(
            f"| {n} | {g['get_state_p50_ms']} | {g['get_metrics_p50_ms']} | {g['check_health_p50_ms']} |"
            for n, g in results["cost_growth"]["instances"].items()
        ),
        "",
        "## Events (WatchTasks)",
        "",
        "| subscribers | events/s offered | p50 ms (CreateTask returned -> event received) | p99 ms "
        "| deliveries |",
        "|---|---|---|---|---|",
    ]
    for key in ("subscribers_1", "subscribers_100"):
        e = ev[key]
        lines.append(
            f"| {key.split('_')[1]} | {e['events_per_s_offered']} | {e['p50_ms']} | {e['p99_ms']} "
            f"| {e['deliveries']} |"
        )
    backlog = ev["one_subscriber_backlog_events_per_s"]
    lines += _fan_out_lines(ev.get("subscribers_100_by_rate"), results["ceilings"].get("fan_out_100"))
    lines += _sse_lines(results.get("sse"))
    lines += [
        "",
        f"One subscriber reading a backlog: {backlog} events/s = {_ratio(backlog, stream['msgs_per_s'])} "
        "x the bare streaming ceiling (target >= 0.5).",
        "",
        "## Tracing overhead",
        "",
        f"CreateTask at 16 in flight: {tr['create_per_s_16_off']}/s with tracing off, "
        f"{tr['create_per_s_16_on']}/s "
        f"with every span exported over OTLP/gRPC (batch processor) = {tr['on_over_off']} x "
        "(target >= 0.90); with a 10 % head sampler (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`, "
        f"`OTEL_TRACES_SAMPLER_ARG=0.1`): {tr.get('create_per_s_16_sampled_10pct')}/s = "
        f"{tr.get('sampled_over_off')} x; with the gRPC instrumentation but nothing sampled "
        f"(`OTEL_TRACES_SAMPLER=always_off`): {tr.get('create_per_s_16_unsampled')}/s = "
        f"{tr.get('unsampled_over_off')} x. The servers run side by side on the same Redis and "
        f"are measured in alternation; medians of {len(tr['rounds']['off'])} rounds, the order "
        "rotated each round.",
        "",
        *_tracing_cost_lines(tr),
    ]
    if "scale_out" in results:
        s = results["scale_out"]
        solo = s["standalone_1_namespace"]
        lines += [
            "## Scale-out on Redis Cluster (3 primaries)",
            "",
            "CreateTask/s at 16 in flight per namespace, one server process per namespace, the "
            "namespaces on different primaries; all processes share this machine's cores.",
            "",
            "| layout | CreateTask/s | / standalone |",
            "|---|---|---|",
            f"| standalone Redis, 1 namespace | {solo} | 1.00 |",
            *(
                f"| cluster, {n} namespace{'s' if n > 1 else ''} | {s[f'cluster_{n}_namespaces']} | "
                f"{_ratio(s[f'cluster_{n}_namespaces'], solo)} |"
                for n in (1, 2, 3)
            ),
            "",
        ]
    path.write_text("\n".join(lines))


def _sse_lines(sse: dict[str, Any] | None) -> list[str]:
    """The dashboard's Server-Sent Events beside WatchTasks, on one server in the same run."""
    if not sse:
        return []
    rows = []
    for name, key in (("WatchTasks (gRPC)", "watch_tasks"), ("/api/v1/events (SSE)", "sse")):
        e = sse[key]
        rows.append(
            f"| {name} | {e['events_per_s_offered']} | {e['p50_ms']} | {e['p99_ms']} | {e['deliveries']} | "
            f"{e.get('server_cpu_us_per_delivery', 'n/a')} |"
        )
    return [
        "",
        f"The dashboard's Server-Sent Events beside WatchTasks: {sse['subscribers']} subscribers on "
        f"one server process at {sse['events_per_s']:g} events/s, {sse.get('seconds', '')} s each, "
        "the same server (`python -m bench.sse`"
        + (f", run on its own on {sse['date']}" if "date" in sse else "")
        + "). Server CPU from /proc, all threads, over the whole "
        "measurement (the CreateTasks calls that publish included) divided by the deliveries:",
        "",
        "| transport | events/s offered | p50 ms | p99 ms | deliveries | server CPU µs / delivery |",
        "|---|---|---|---|---|---|",
        *rows,
        *(
            [
                "",
                "An offered rate below the target means the publisher, sharing the bench process "
                "with the 100 readers, fell behind: the readers (Python, one process) are the "
                "bottleneck there, and the latencies include that process's own backlog.",
            ]
            if any(sse[k]["events_per_s_offered"] < 0.9 * sse["events_per_s"] for k in ("watch_tasks", "sse"))
            else []
        ),
    ]


def _tracing_cost_lines(tr: dict[str, Any]) -> list[str]:
    """Where tracing's cost comes from: server CPU per call, and the SDK's own price per span."""
    cpu = tr.get("server_cpu_us_per_call")
    sdk = tr.get("sdk_per_span")
    if not cpu or not sdk:
        return []
    return [
        f"Server CPU per CreateTask (medians of as many rounds, export included): {cpu['off']} µs off, "
        f"{cpu['on']} µs on ({_ratio(cpu['on'], cpu['off'])} x), {cpu['sampled_10pct']} µs with "
        f"10 % sampling ({_ratio(cpu['sampled_10pct'], cpu['off'])} x), {cpu['unsampled']} µs with "
        f"nothing sampled ({_ratio(cpu['unsampled'], cpu['off'])} x).",
        "",
        f"The OpenTelemetry SDK's own price of one span, measured in the same run: "
        f"{sdk['create_end_us']} µs to create and end it, {sdk['otlp_encode_us']} µs for the OTLP "
        "exporter to encode it. A traced CreateTask makes two spans (the RPC's and its script's): "
        f"creating them alone adds {tr['sdk_create_over_off_cpu']} x the untraced call's server CPU, "
        f"creating and encoding them {tr['sdk_floor_over_off_cpu']} x, before any work of the gRPC "
        "instrumentation: the floor of always-on tracing with the OpenTelemetry Python SDK here.",
        "",
    ]


def _fan_out_lines(
    by_rate: dict[str, dict[str, Any]] | None, ceiling: dict[str, dict[str, Any]] | None
) -> list[str]:
    """100 subscribers at several event rates beside the bare grpc.aio fan-out server, and the
    highest rate whose p99 stays within 10 ms."""
    if not by_rate or not ceiling:
        return []
    within = [float(rate) for rate, e in by_rate.items() if e["p99_ms"] is not None and e["p99_ms"] <= 10]
    best = f"{max(within):g} events/s" if within else "none of the rates tried"
    bare_within = [
        float(rate) for rate, e in ceiling.items() if e["p99_ms"] is not None and e["p99_ms"] <= 10
    ]
    bare_best = f"{max(bare_within):g} events/s" if bare_within else "none of the rates tried either"
    rows = [
        f"| {rate} | {ours['p50_ms']} | {ours['p99_ms']} | {ceiling[rate]['p50_ms']} | "
        f"{ceiling[rate]['p99_ms']} | {_ratio(ours['p99_ms'], ceiling[rate]['p99_ms'])} |"
        for rate, ours in by_rate.items()
    ]
    bare_1000 = ceiling.get("1000")
    return [
        "",
        "100 subscribers, each event delivered 100 times, beside the bare grpc.aio fan-out server "
        "(a queue per stream, nothing else: `python -m bench.bare fanout`) measured the same way in "
        "the same run:",
        "",
        "| events/s | p50 ms | p99 ms | bare p50 ms | bare p99 ms | p99 / bare |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Highest rate tried with p99 <= 10 ms at 100 subscribers: {best}; the bare server: {bare_best}"
        + (
            f" (at 1,000 events/s it reached {bare_1000['events_per_s_offered']} events/s offered, "
            f"p99 {bare_1000['p99_ms']} ms)."
            if bare_1000
            else "."
        ),
    ]
