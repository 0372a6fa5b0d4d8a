"""The one exception the stores raise for an expected, non-OK outcome."""

from __future__ import annotations

from claudebench.scripts.results import ResultCode, ScriptResult


class DomainError(Exception):
    """An expected outcome other than OK (NOT_FOUND, AT_CAPACITY, ...), with a message for people."""

    def __init__(self, code: ResultCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_result(cls, result: ScriptResult) -> DomainError:
        return cls(result.code, result.payload)


def ok_payload(result: ScriptResult) -> str:
    """The payload of an OK result; raise the result's DomainError otherwise."""
    if not result.ok:
        raise DomainError.from_result(result)
    return result.payload
