"""Credentials: Redis ACL users and passwords work, and no secret (Redis password, bearer token)
ever appears in a log line or an error message."""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import urlsplit

import grpc
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.api.helpers import serving

REDIS_PASSWORD = "s3cret-redis-pw-4f1"
ADMIN_TOKEN = "tok-admin-9c2e77"
WRONG_TOKEN = "tok-wrong-5b81aa"
SECRETS = (REDIS_PASSWORD, ADMIN_TOKEN, WRONG_TOKEN)


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}").geturl()


@pytest.fixture
async def acl_user(redis_client: aioredis.Redis) -> str:
    """A Redis ACL user limited to the cb:* keys, without the dangerous commands."""
    await redis_client.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "claudebench", "reset", "on", f">{REDIS_PASSWORD}", "~cb:*", "+@all", "-@dangerous"
    )
    return "claudebench"


async def test_an_acl_user_serves_and_no_secret_is_logged_or_echoed(
    settings: Settings, acl_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert settings.redis_url is not None
    url = with_credentials(settings.redis_url, acl_user, REDIS_PASSWORD)
    settings = dataclasses.replace(settings, redis_url=url, auth_tokens=f"{ADMIN_TOKEN}:admin")
    caplog.set_level(logging.DEBUG)
    details: list[str] = []
    async with serving(settings) as (_, channel):
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
        created = await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="acl"), metadata=admin)
        got = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=created.task.id), metadata=admin)
        assert got.task.text == "acl"
        for metadata in (
            (("authorization", f"Bearer {WRONG_TOKEN}"),),
            (("authorization", WRONG_TOKEN),),
            (),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=created.task.id), metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            details.append(refused.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id="nope"), metadata=admin)
        details.append(missing.value.details() or "")
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    for secret in SECRETS:
        assert secret not in caplog.text
        assert all(secret not in d for d in details)


async def test_a_wrong_redis_password_fails_start_up_without_echoing_it(
    settings: Settings, acl_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert settings.redis_url is not None
    url = with_credentials(settings.redis_url, acl_user, "not-the-password-77")
    caplog.set_level(logging.DEBUG)
    app = ClaudebenchServer(settings, url)
    with pytest.raises(AuthenticationError) as failed:
        await app.start()
    assert "not-the-password-77" not in str(failed.value)
    assert "not-the-password-77" not in caplog.text
