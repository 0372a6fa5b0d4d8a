"""Task ids that never collide and sort by creation time."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_task_id() -> str:
    """``t-`` + a ULID: 48 bits of milliseconds then 80 random bits, Crockford base32 (26 chars).

    Unlike the original ``t-<ms>`` ids, two ids made in the same millisecond (by one process or by
    many) differ with overwhelming probability; the time prefix keeps them roughly sortable.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "t-" + "".join(reversed(chars))
