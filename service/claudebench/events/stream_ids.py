"""Redis stream entry ids ("<ms>-<seq>") as comparable values."""

from __future__ import annotations

import re

StreamId = tuple[int, int]

ZERO: StreamId = (0, 0)
# ASCII digits only (\d would take other scripts' digits, which Redis does not).
_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
# Both parts of a Redis stream id are unsigned 64-bit integers.
_PART_MAX = 2**64 - 1


def parse(text: str) -> StreamId:
    """Parse "<ms>-<seq>" or "<ms>" (which Redis reads as "<ms>-0"); ValueError otherwise (also
    for a part beyond what Redis can hold)."""
    match = _ID.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a stream id")
    ms, seq = int(match.group(1)), int(match.group(2) or 0)
    if ms > _PART_MAX or seq > _PART_MAX:
        raise ValueError(f"{text!r} is beyond the largest stream id")
    return ms, seq


def render(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"
