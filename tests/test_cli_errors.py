"""A person's mistakes at the `claudebench` command: one line on stderr, a non-zero exit, never a
traceback (issue 16)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from claudebench.server import ClaudebenchServer


def claudebench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claudebench", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("serve", "--listen", "garbage"), "--listen must be host:port"),
        (("serve", "--listen", "127.0.0.1:99999"), "port 99999 is out of range"),
        (("serve", "--log-level", "loud"), "invalid choice: 'LOUD'"),
        (
            ("serve", "--listen", "127.0.0.1:0", "--redis-url", "http://u:secret@h/0"),
            "starts with redis://, rediss://, unix://, redis+cluster://",
        ),
        (
            (
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--redis-url",
                "redis://u:secret@127.0.0.1:1/0",
                "--redis-wait",
                "0.5",
            ),
            "cannot reach Redis at redis://u:***@127.0.0.1:1/0",
        ),
        (("task", "create", "x", "--metadata", "{bad", "--server", "127.0.0.1:1"), "--metadata is not JSON"),
        (("task", "create", "x", "--metadata", "[1]", "--server", "127.0.0.1:1"), "must be a JSON object"),
        (
            ("task", "complete", "t", "w", "--result", "nope", "--server", "127.0.0.1:1"),
            "--result is not JSON",
        ),
    ],
)
def test_a_mistake_is_one_line_and_a_failure(args: tuple[str, ...], message: str) -> None:
    done = claudebench(*args)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    # argparse's own mistakes come after its usage lines; the error itself is one line, the last.
    (line,) = [line for line in done.stderr.splitlines() if "error:" in line]
    assert message in line
    assert done.stderr.rstrip().endswith(line)
    assert "secret" not in done.stderr


def test_version() -> None:
    done = claudebench("--version")
    assert (done.returncode, done.stdout.split()[0]) == (0, "claudebench")


async def test_a_reader_that_goes_away_is_no_traceback(server: ClaudebenchServer) -> None:
    # `claudebench state | head -0`: the reading end is closed before the command writes.
    read_end, write_end = os.pipe()
    os.close(read_end)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claudebench", "state", "--server", f"127.0.0.1:{server.port}",
        stdout=write_end, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    os.close(write_end)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 141
    assert err == b""
