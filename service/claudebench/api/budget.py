"""Reply byte budgets: every reply fits the gRPC message limit by construction.

A reply that lists tasks, events or instances takes them while their encoded size fits the budget
(the message limit minus room for the other fields, `TaskStore.reply_budget`); the rest is left for
the next page (ListTasks, GetState instances: next_page_token) or left out (GetState's recent
events). Writes that return what they wrote are bounded before they run (scripts bound each Task
message with task_wire_bound in lua/lib/task.lua; batches are refused when their reply could not fit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


def framed_size(message: Message) -> int:
    """The bytes `message` takes as one element of a repeated field (tag, length, body)."""
    size = message.ByteSize()
    return 1 + _varint_len(size) + size


def _varint_len(value: int) -> int:
    length = 1
    while value >= 0x80:
        value >>= 7
        length += 1
    return length


def fitting(messages: Iterable[M], budget: int, at_least_one: bool = True) -> tuple[list[M], int]:
    """The longest prefix of `messages` whose framed sizes fit `budget` bytes, and the bytes it
    takes. With at_least_one, the first message is taken whatever its size (a single task or
    instance is bounded by the input limits, far below the message limit)."""
    taken: list[M] = []
    used = 0
    for message in messages:
        size = framed_size(message)
        if used + size > budget and (taken or not at_least_one):
            break
        taken.append(message)
        used += size
    return taken, used
