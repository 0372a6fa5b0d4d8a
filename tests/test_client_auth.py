"""Clients with a token and TLS (claudebench.client.channel) against real servers that want them
(certificates made by trustme): AsyncClient and Worker, Client, and the CLI (`--token` /
$CLAUDEBENCH_TOKEN, `--tls-ca` / $CLAUDEBENCH_TLS_CA). The token goes on every call, streams
included; a wrong or missing one is refused by the server and, in the CLI, is one plain line and a
non-zero exit code (the hook: its deny decision); the token is never printed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
import trustme

from claudebench.client import AsyncClient, Client, Worker
from claudebench.client.channel import ChannelError, credentials
from claudebench.client.claude_agent import ClaudebenchHooks
from claudebench.config import Settings
from claudebench.server import ClaudebenchServer
from claudebench.v1 import tasks_pb2
from tests.test_hook_command import payload

ADMIN, WORKER, READER = "adm-secret-1", "wrk-secret-2", "rdr-secret-3"
TOKENS = f"{ADMIN}:admin,{WORKER}:worker,{READER}:reader"


@dataclasses.dataclass
class Pki:
    ca: Path  # the CA a client trusts
    client_cert: Path  # a client certificate signed by it, and its key
    client_key: Path
    server_cert: Path
    server_key: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("worker-1")

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return Pki(
        ca=write("ca.pem", ca.cert_pem.bytes()),
        client_cert=write("client.pem", b"".join(b.bytes() for b in client.cert_chain_pems)),
        client_key=write("client-key.pem", client.private_key_pem.bytes()),
        server_cert=write("server.pem", b"".join(b.bytes() for b in server.cert_chain_pems)),
        server_key=write("server-key.pem", server.private_key_pem.bytes()),
    )


async def start(settings: Settings, **changes: object) -> ClaudebenchServer:
    configured = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    assert configured.redis_url is not None
    app = ClaudebenchServer(configured, configured.redis_url)
    await app.start()
    return app


@pytest.fixture
async def token_server(settings: Settings, redis_client: aioredis.Redis) -> AsyncIterator[ClaudebenchServer]:
    """Tokens, plain text (on loopback)."""
    app = await start(settings, auth_tokens=TOKENS)
    yield app
    await app.stop(grace_s=0)


@pytest.fixture
async def tls_token_server(
    settings: Settings, redis_client: aioredis.Redis, pki: Pki
) -> AsyncIterator[ClaudebenchServer]:
    """Tokens over TLS (no client certificate asked)."""
    app = await start(
        settings, auth_tokens=TOKENS, tls_cert_file=pki.server_cert, tls_key_file=pki.server_key
    )
    yield app
    await app.stop(grace_s=0)


async def test_worker_completes_a_task_over_tls_with_a_token(
    tls_token_server: ClaudebenchServer, pki: Pki
) -> None:
    address = f"localhost:{tls_token_server.port}"
    async with AsyncClient(address, token=WORKER, tls_ca=pki.ca) as client:
        events = client.watch(after_event_id="0", types=[tasks_pb2.TASK_EVENT_TYPE_COMPLETED])
        created = await client.create_task("over TLS", metadata={"n": 2})

        async def handler(task: tasks_pb2.Task) -> object:
            n = task.metadata["n"]
            assert isinstance(n, float)
            return {"twice": n * 2}

        for stream in (True, False):  # the Work stream, then ClaimTask long polls
            worker = Worker(client, f"tls-worker-{stream}", handler, capacity=2, stream=stream, poll_wait_s=1)
            running = asyncio.create_task(worker.run())
            if not stream:
                created = await client.create_task("over TLS", metadata={"n": 2})
            # The watch stream carries the token too: it sees the completion.
            completed = await asyncio.wait_for(events.__anext__(), 15)
            worker.stop()
            await asyncio.wait_for(running, 15)
            assert (completed.task_id, worker.completed, worker.failed) == (created.id, 1, 0)
            done = await client.get_task(created.id)
            assert done.status == tasks_pb2.TASK_STATUS_COMPLETED
            assert done.result.struct_value["twice"] == 4
        await events.aclose()

    # Without a token, with a wrong one, or with one whose role does not allow the call: refused.
    for token, code in ((None, grpc.StatusCode.UNAUTHENTICATED), ("wrong", grpc.StatusCode.UNAUTHENTICATED)):
        async with AsyncClient(address, token=token, tls_ca=pki.ca) as client:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await client.create_task("x")
            assert refused.value.code() == code
    async with AsyncClient(address, token=READER, tls_ca=pki.ca) as client:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await client.create_task("x")
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with AsyncClient(address, token="wrong", tls_ca=pki.ca) as client:
        with pytest.raises(grpc.aio.AioRpcError) as refused_stream:
            await client.watch(after_event_id="0").__anext__()
        assert refused_stream.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # Plain text to a TLS listener, or TLS without trusting its CA: no connection.
    for security in ({"token": ADMIN}, {"token": ADMIN, "tls": True}):
        async with AsyncClient(address, timeout=3, **security) as client:
            with pytest.raises(grpc.aio.AioRpcError) as unreachable:
                await client.create_task("x")
            assert unreachable.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_sync_client_with_a_token_in_plain_text_on_loopback(token_server: ClaudebenchServer) -> None:
    address = f"127.0.0.1:{token_server.port}"

    def blocking() -> None:
        with Client(address, token=WORKER) as client:
            created = client.create_task("plain loopback")
            client.register("sync-1", max_tasks=1)
            (claimed,) = client.claim("sync-1")
            assert claimed.id == created.id
            assert client.complete(created.id, "sync-1", 1).status == tasks_pb2.TASK_STATUS_COMPLETED
        with Client(address, token="wrong") as client, pytest.raises(grpc.RpcError) as refused:
            client.get_task(created.id)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "wrong" not in str(refused.value.details())

    await asyncio.to_thread(blocking)


async def test_claude_agent_hooks_with_a_token(token_server: ClaudebenchServer) -> None:
    address = f"127.0.0.1:{token_server.port}"
    call = {"tool_name": "Bash", "tool_input": {"command": "ls"}}
    allowed = await ClaudebenchHooks(address, "agent-1", token=WORKER).pre_tool_use(call, None, None)
    assert allowed["hookSpecificOutput"]["permissionDecision"] == "allow"
    refused = await ClaudebenchHooks(address, "agent-1", token="wrong").pre_tool_use(call, None, None)
    assert refused["hookSpecificOutput"] == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "deny",
        "permissionDecisionReason": "claudebench hook unavailable (UNAUTHENTICATED); denied",
    }


async def test_sync_client_over_mutual_tls(
    settings: Settings, redis_client: aioredis.Redis, pki: Pki
) -> None:
    app = await start(
        settings,
        auth_tokens=TOKENS,
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca,
    )
    address = f"127.0.0.1:{app.port}"

    def blocking() -> None:
        with Client(
            address, token=ADMIN, tls_ca=pki.ca, tls_cert=pki.client_cert, tls_key=pki.client_key
        ) as c:
            assert c.create_task("mutual").text == "mutual"
        with Client(address, timeout=3, token=ADMIN, tls_ca=pki.ca) as c, pytest.raises(grpc.RpcError) as no:
            c.create_task("no client certificate")
        assert no.value.code() == grpc.StatusCode.UNAVAILABLE

    try:
        await asyncio.to_thread(blocking)
    finally:
        await app.stop(grace_s=0)


def test_channel_errors_are_plain_and_never_hold_the_token(tmp_path: object) -> None:
    assert credentials("127.0.0.1:1") is None  # no token, no TLS: a plain channel, as before
    for address in ("127.0.0.1:1", "localhost:1", "[::1]:1", "unix:/tmp/x.sock"):
        assert credentials(address, token="t") is not None
    with pytest.raises(ChannelError, match="needs TLS") as plain:
        credentials("claudebench.example:50051", token="s3cret-token")
    assert "s3cret-token" not in str(plain.value)
    assert credentials("claudebench.example:50051", token="t", tls=True) is not None
    with pytest.raises(ChannelError, match=r"cannot read the TLS CA file '/no/such/ca\.pem'"):
        credentials("h:1", tls_ca="/no/such/ca.pem")
    with pytest.raises(ChannelError, match="both tls_cert and tls_key"):
        credentials("h:1", tls_cert="/c.pem")


async def cli(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDEBENCH_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claudebench", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**environment, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_task_watch_scripts_health_over_tls_with_a_token(
    tls_token_server: ClaudebenchServer, pki: Pki
) -> None:
    at = ("--server", f"localhost:{tls_token_server.port}")
    code, out, err = await cli(
        "task", "create", "from the cli", "--json", *at, "--token", WORKER, "--tls-ca", str(pki.ca)
    )
    assert (code, err) == (0, "")
    task_id = json.loads(out)["task"]["id"]

    # The token and the CA from the environment, as a hook or a script gets them.
    env = {"CLAUDEBENCH_TOKEN": READER, "CLAUDEBENCH_TLS_CA": str(pki.ca)}
    code, out, err = await cli("task", "list", "--json", *at, env=env)
    assert (code, err) == (0, "")
    assert [t["id"] for t in json.loads(out)["tasks"]] == [task_id]
    code, out, err = await cli("watch", "--after", "0", "--limit", "1", "--json", *at, env=env)
    assert (code, err) == (0, "")
    assert json.loads(out)["taskId"] == task_id
    code, out, err = await cli("scripts", "verify", *at, env=env)
    assert code == 0, err
    code, out, _ = await cli("health", *at, env=env)
    assert (code, out.split()[-1]) == (0, "SERVING")
    # A flag wins over the environment: a reader may not create.
    code, out, err = await cli(
        "task", "create", "x", *at, "--token", READER, env={**env, "CLAUDEBENCH_TOKEN": ADMIN}
    )
    assert (code, out) == (1, "")
    assert err.startswith("error: PERMISSION_DENIED: ")
    assert len(err.splitlines()) == 1

    # A wrong token, or none: one line naming the status, exit 1, the token never printed.
    for command in (("task", "list"), ("watch", "--limit", "1"), ("scripts", "verify")):
        for token_env in ({"CLAUDEBENCH_TOKEN": "wrong-secret-9"}, {}):
            code, out, err = await cli(*command, *at, env={**token_env, "CLAUDEBENCH_TLS_CA": str(pki.ca)})
            assert code == 1, (command, err)
            assert len(err.splitlines()) == 1, err
            assert "UNAUTHENTICATED" in err
            assert "wrong-secret-9" not in out + err
            assert "Traceback" not in err

    # TLS not trusted, a CA file that is not there, a token in plain text to another host: one line.
    code, _, err = await cli("task", "list", *at, "--token", ADMIN, "--tls")
    assert (code, len(err.splitlines())) == (1, 1)
    assert "UNAVAILABLE" in err
    code, _, err = await cli("task", "list", *at, "--token", ADMIN, "--tls-ca", "/no/such/ca.pem")
    assert (code, err) == (
        1,
        "claudebench: error: cannot read the TLS CA file '/no/such/ca.pem': No such file or directory\n",
    )
    code, _, err = await cli("task", "list", "--server", "claudebench.invalid:1", "--token", ADMIN)
    assert code == 1
    assert err == (
        "claudebench: error: a token is sent only over TLS or to a loopback address; "
        "claudebench.invalid:1 needs TLS (--tls)\n"
    )


async def test_hook_with_the_token_of_its_environment(token_server: ClaudebenchServer) -> None:
    at = ("--server", f"127.0.0.1:{token_server.port}")
    allowed = payload("Bash", {"command": "ls"})
    code, out, err = await cli("hook", "pre-tool-use", *at, env={"CLAUDEBENCH_TOKEN": WORKER}, stdin=allowed)
    assert (code, err) == (0, "")
    assert json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "allow"
    code, out, _ = await cli(
        "hook", "pre-tool-use", *at, "--token", WORKER, stdin=payload("Bash", {"command": "rm -rf /"})
    )
    assert json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "deny"

    # A wrong token: the hook's deny decision (exit 0, which Claude Code reads), saying why.
    code, out, _ = await cli(
        "hook", "pre-tool-use", *at, env={"CLAUDEBENCH_TOKEN": "wrong-secret-9"}, stdin=allowed
    )
    decision = json.loads(out)["hookSpecificOutput"]
    assert (code, decision["permissionDecision"]) == (0, "deny")
    assert decision["permissionDecisionReason"].startswith("claudebench hook unavailable (UNAUTHENTICATED: ")
    assert "wrong-secret-9" not in out
