"""Small helpers for RPC tests."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest


async def rpc_error(call: Awaitable[Any], code: grpc.StatusCode) -> str:
    """Await a call that must fail with `code`; return its details."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    details = info.value.details()
    assert details
    return details
