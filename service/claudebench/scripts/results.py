"""Typed results of the Lua scripts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ResultCode(StrEnum):
    """Every code a script may return (the first element of its ``{code, payload}`` reply)."""

    OK = "OK"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INSTANCE_NOT_REGISTERED = "INSTANCE_NOT_REGISTERED"
    INSTANCE_OFFLINE = "INSTANCE_OFFLINE"
    AT_CAPACITY = "AT_CAPACITY"
    NOT_PENDING = "NOT_PENDING"
    DENIED = "DENIED"
    NOT_HELD = "NOT_HELD"
    ALREADY_FINISHED = "ALREADY_FINISHED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    STALE = "STALE"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
    QUEUES_CHANGED = "QUEUES_CHANGED"
    WRONG_QUEUE = "WRONG_QUEUE"
    INVALID_CONFIG = "INVALID_CONFIG"


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """A script's reply: its code, and a JSON payload on OK or a message for people otherwise."""

    code: ResultCode
    payload: str

    @property
    def ok(self) -> bool:
        return self.code is ResultCode.OK


class ScriptContractError(RuntimeError):
    """A script was called or answered outside its header contract: a bug, reported as INTERNAL."""
