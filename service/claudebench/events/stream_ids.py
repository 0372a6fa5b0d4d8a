"""Redis stream entry ids ("<ms>-<seq>") as comparable values."""

from __future__ import annotations

import re

StreamId = tuple[int, int]

ZERO: StreamId = (0, 0)
_ID = re.compile(r"(\d+)(?:-(\d+))?")


def parse(text: str) -> StreamId:
    """Parse "<ms>-<seq>" or "<ms>" (which Redis reads as "<ms>-0"); ValueError otherwise."""
    match = _ID.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a stream id")
    return int(match.group(1)), int(match.group(2) or 0)


def render(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"
