"""TLS and mutual TLS on the gRPC listener, with certificates made for the test (trustme)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
import trustme

from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import close_channel


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
async def tls_server(
    settings: Settings, ca: trustme.CA, tmp_path: Path, redis_client: aioredis.Redis
) -> AsyncIterator[ClaudebenchServer]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    tls = dataclasses.replace(
        settings,
        tls_cert_file=write(tmp_path, "cert.pem", b"".join(b.bytes() for b in cert.cert_chain_pems)),
        tls_key_file=write(tmp_path, "key.pem", cert.private_key_pem.bytes()),
        tls_client_ca_file=write(tmp_path, "client-ca.pem", ca.cert_pem.bytes()),
    )
    assert tls.redis_url is not None
    app = ClaudebenchServer(tls, tls.redis_url)
    await app.start()
    yield app
    await app.stop(grace_s=0)


async def test_mutual_tls(tls_server: ClaudebenchServer, ca: trustme.CA) -> None:
    client_cert = ca.issue_cert("worker-1")
    good = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem.bytes(),
        private_key=client_cert.private_key_pem.bytes(),
        certificate_chain=b"".join(b.bytes() for b in client_cert.cert_chain_pems),
    )
    channel = grpc.aio.secure_channel(f"127.0.0.1:{tls_server.port}", good)
    created = await tasks_pb2_grpc.TaskServiceStub(channel).CreateTask(
        tasks_pb2.CreateTaskRequest(text="over TLS"), timeout=10
    )
    assert created.task.text == "over TLS"
    await close_channel(channel)

    # Without a client certificate, and in plain text, the server refuses the connection.
    anonymous = grpc.aio.secure_channel(
        f"127.0.0.1:{tls_server.port}", grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    )
    plain = grpc.aio.insecure_channel(f"127.0.0.1:{tls_server.port}")
    for channel in (anonymous, plain):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await tasks_pb2_grpc.TaskServiceStub(channel).CreateTask(
                tasks_pb2.CreateTaskRequest(text="x"), timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        await close_channel(channel)
