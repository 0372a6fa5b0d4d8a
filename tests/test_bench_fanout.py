"""The benchmark's fan-out measurement counts every delivery once: also those that reach a
subscriber before the publisher has its reply (they took 0 ms after the call returned)."""

from __future__ import annotations

from bench import fanout, sse
from bench.servers import process
from claudebench.ports import free_port


async def test_every_delivery_is_measured_once() -> None:
    port = free_port()
    with process(["-m", "bench.bare", "fanout", str(port)]):
        result = await fanout.bare_ceiling(f"127.0.0.1:{port}", 5, 50, 0.5)
    assert result["events_published"] >= 10
    assert result["deliveries"] == result["events_published"] * 5
    assert 0 <= result["p50_ms"] <= result["p99_ms"]


async def test_every_sse_and_watch_delivery_is_measured_with_the_server_cpu(redis_server_url: str) -> None:
    result = await sse.sse_vs_watch(redis_server_url, 0.5, subscribers=5, events_per_s=50)
    for transport in ("watch_tasks", "sse"):
        measured = result[transport]
        assert measured["events_published"] >= 10
        assert measured["deliveries"] == measured["events_published"] * 5
        assert measured["server_cpu_us_per_delivery"] > 0
