"""The Redis connection helpers: commands packed by hiredis are byte for byte what redis-py packs."""

from __future__ import annotations

import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from claudebench.redis_connect import HiredisPackingConnection, connect

arguments = st.lists(
    st.one_of(
        st.text(),
        st.binary(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=20,
)


@given(st.sampled_from(["EVALSHA", "SCRIPT LOAD", "XREAD", "HSET"]), arguments)
def test_hiredis_packing_matches_redis_py(command: str, args: list[str | bytes | int | float]) -> None:
    ours = HiredisPackingConnection().pack_command(command, *args)
    theirs = aioredis.Connection().pack_command(command, *args)
    assert b"".join(ours) == b"".join(theirs)


def test_plain_tcp_uses_the_hiredis_packer_and_tls_keeps_its_own() -> None:
    plain = connect("redis://127.0.0.1:1/0", timeout_s=1, max_connections=1)
    tls = connect("rediss://127.0.0.1:1/0", timeout_s=1, max_connections=1)
    assert isinstance(plain, aioredis.Redis)
    assert isinstance(tls, aioredis.Redis)
    assert plain.connection_pool.connection_class is HiredisPackingConnection
    assert tls.connection_pool.connection_class is aioredis.SSLConnection
