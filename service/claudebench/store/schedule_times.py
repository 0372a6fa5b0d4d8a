"""When a schedule runs: 5-field cron expressions in an IANA time zone (parsed by `cronsim`, which
handles daylight-saving changes like Debian cron) or a fixed interval.

Cron: a time that a spring-forward change skips runs at the first minute after the gap; a time that
a fall-back change repeats runs once (its first occurrence). Intervals are absolute milliseconds,
unaffected by time zones.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError

MAX_CRON_CHARS = 200
_ZONE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")


class BadSpec(ValueError):
    """A cron expression or time zone that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Spec:
    """How a schedule repeats: `cron` in `time_zone`, or every `interval_ms`."""

    cron: str | None = None
    interval_ms: int | None = None
    time_zone: str = ""


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone `name` (e.g. Europe/Berlin), or BadSpec."""
    if not (_ZONE.fullmatch(name) and name in _known_zones()):
        raise BadSpec(f"time_zone {name[:80]!r} is not a known IANA time zone (e.g. UTC, Europe/Berlin)")
    return zoneinfo.ZoneInfo(name)


def check_cron(expression: str, time_zone: str, now_ms: int) -> None:
    """Refuse an expression that is not 5 fields, that cronsim rejects, or that never fires."""
    if len(expression) > MAX_CRON_CHARS:
        raise BadSpec(f"cron is {len(expression)} characters long; the limit is {MAX_CRON_CHARS}")
    fields = expression.split()
    if len(fields) != 5:
        raise BadSpec(
            f"cron {expression!r} must have 5 fields (minute hour day-of-month month day-of-week), "
            f"it has {len(fields)}"
        )
    where = zone(time_zone)
    try:
        _next_cron(expression, where, now_ms)
    except CronSimError as exc:
        raise BadSpec(f"cron {expression!r} is not a valid cron expression: {str(exc).lower()}") from None
    except StopIteration:
        raise BadSpec(f"cron {expression!r} never fires") from None


def _next_cron(expression: str, where: zoneinfo.ZoneInfo, after_ms: int) -> int:
    """The first time the expression matches strictly after after_ms (whole seconds)."""
    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(where)
    found = next(CronSim(expression, start))
    return int(found.timestamp()) * 1000


def first_run(spec: Spec, now_ms: int) -> int:
    """The first run of a schedule created (or resumed) at now_ms."""
    if spec.cron is not None:
        return _next_cron(spec.cron, zone(spec.time_zone), now_ms)
    assert spec.interval_ms is not None
    return now_ms + spec.interval_ms


def run_after(spec: Spec, tick_ms: int, now_ms: int) -> int:
    """The run after the tick at tick_ms, seen at now_ms (>= tick_ms): the first one later than
    now, so that ticks missed meanwhile are skipped. Intervals keep their phase (tick + k * interval)."""
    if spec.cron is not None:
        return _next_cron(spec.cron, zone(spec.time_zone), max(tick_ms, now_ms))
    assert spec.interval_ms is not None
    periods = max(0, now_ms - tick_ms) // spec.interval_ms + 1
    return tick_ms + periods * spec.interval_ms
