"""Which token may act as which instance (issue 15 finding 5), when tokens are configured.

An instance id belongs to the token that registered it: the SHA-256 fingerprint of that token is
the `owner` field of the instance's hash (written by INSTANCE_REGISTER, atomically with the check,
so two tokens registering one new id cannot both win). A token configured with instance ids
(`token:role:id1|id2|build-*`, a trailing `*` matching any suffix) may act only as those, and
those ids belong to it whoever registered them first. Admin tokens act for every instance.

`ACTS_AS` names, per RPC, the request fields that say which instance the call acts as. The auth
interceptor checks them before the servicer runs and answers PERMISSION_DENIED with a plain
message. A new RPC that acts as an instance joins with one line in `ACTS_AS` (and one call in
tests/api/test_identity.py's `acting_calls`, which tries every RPC of the table across two tokens);
one that writes the owner (as Register does) reads the caller with `current_caller()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from claudebench.api import validation as check

InstanceIds = Callable[[Any], Iterable[str]]


def _field(name: str) -> InstanceIds:
    return lambda request: (getattr(request, name),)


def _each(repeated: str, name: str) -> InstanceIds:
    return lambda request: {getattr(item, name) for item in getattr(request, repeated)}


def _work_message(request: Any) -> Iterable[str]:
    kind = request.WhichOneof("kind")
    return (getattr(request, kind).worker_id,) if kind else ()


# RPC -> the instance ids its request acts as. AssignTask is not here: it names the instance that
# gets a task (a supervisor's call), it does not act as it.
ACTS_AS: Mapping[str, InstanceIds] = {
    "Register": _field("instance_id"),
    "Heartbeat": _field("instance_id"),
    "Unregister": _field("instance_id"),
    "ClaimTask": _field("worker_id"),
    "CompleteTask": _field("worker_id"),
    "CompleteTasks": _each("completions", "worker_id"),
    "ReleaseTask": _field("worker_id"),
    "ReportProgress": _field("worker_id"),
    # Each message of the stream: the hello's worker, then each completion's, progress' or release's.
    "Work": _work_message,
    "CoordinateBatch": _field("instance_id"),
    "QuorumVote": _field("instance_id"),
    "PreToolUse": _field("instance_id"),
    "PostToolUse": _field("instance_id"),
}


def fingerprint(token: str) -> str:
    """What identifies a token in Redis: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def _matches(patterns: Sequence[str], instance_id: str) -> bool:
    return any(instance_id.startswith(p[:-1]) if p.endswith("*") else instance_id == p for p in patterns)


@dataclass(frozen=True, slots=True)
class Caller:
    """The token of the call being served (its fingerprint, never the token)."""

    fingerprint: str
    admin: bool
    instances: tuple[str, ...] | None  # configured instance ids (patterns), or None

    def register_owner(self) -> tuple[str, str]:
        """The owner and owner mode Register passes to INSTANCE_REGISTER: claim (refuse an id
        another token owns), assign (the id is this token's by configuration), keep (an admin:
        the owner stays, or is the admin)."""
        if self.admin:
            return self.fingerprint, "keep"
        return self.fingerprint, "claim" if self.instances is None else "assign"


_CALLER: ContextVar[Caller | None] = ContextVar("claudebench_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the RPC being served; None when tokens are not configured."""
    return _CALLER.get()


def serving(caller: Caller) -> Token[Caller | None]:
    """Make `caller` the current caller (until `finished` with the returned token)."""
    return _CALLER.set(caller)


def finished(token: Token[Caller | None]) -> None:
    _CALLER.reset(token)


Owners = Callable[[Sequence[str]], Awaitable[Sequence[str | None]]]


class Identities:
    """The identity rules over the configured tokens and the stored owners."""

    def __init__(self, instances_by_token: Mapping[str, Sequence[str]], owners: Owners) -> None:
        self._reserved = {fingerprint(t): tuple(p) for t, p in instances_by_token.items() if p}
        self._owners = owners

    def caller(self, token: str, role: str) -> Caller:
        mark = fingerprint(token)
        return Caller(mark, role == "admin", self._reserved.get(mark))

    async def refusal(self, caller: Caller, method: str, request: Any) -> str | None:
        """Why `caller` may not make this call of `method`, or None when it may."""
        if caller.admin or method not in ACTS_AS:
            return None
        ids = sorted(i for i in ACTS_AS[method](request) if _valid(i))  # invalid: the servicer says so
        if not ids:
            return None
        if caller.instances is not None:
            for instance_id in ids:
                if not _matches(caller.instances, instance_id):
                    return (
                        f"this token may act only as the instances configured for it "
                        f"({', '.join(caller.instances)}), not as {instance_id}"
                    )
            return None
        for instance_id in ids:
            if any(_matches(p, instance_id) for p in self._reserved.values()):
                return f"instance {instance_id} is configured for another token; this token may not act as it"
        for instance_id, owner in zip(ids, await self._owners(ids), strict=True):
            if owner and owner != caller.fingerprint:
                return (
                    f"instance {instance_id} belongs to the token that registered it; this token "
                    "may not act as it (use that token, an admin token, or another instance id)"
                )
        return None


def _valid(instance_id: str) -> bool:
    try:
        check.identifier(instance_id, "instance_id")
    except check.InvalidArgument:
        return False
    return True
