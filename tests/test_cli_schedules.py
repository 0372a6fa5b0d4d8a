"""`claudebench schedule create|list|get|pause|resume|delete`, run as a person runs them against a
real server."""

from __future__ import annotations

import json

from claudebench.server import ClaudebenchServer
from tests.test_cli import run_command


async def test_schedule_commands(server: ClaudebenchServer) -> None:
    at = ("--server", f"127.0.0.1:{server.port}")
    code, out, err = await run_command(
        "schedule", "create", "nightly", "rotate logs", "--cron", "0 3 * * *", "--time-zone", "Europe/Paris",
        "--priority", "20", "--metadata", '{"team": "ops"}', *at,
    )  # fmt: skip
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split()[:2] == ["ID", "EVERY"]
    assert row.split()[:8] == ["nightly", "0", "3", "*", "*", "*", "(Europe/Paris)", "running"]
    assert row.endswith("rotate logs")

    code, out, _ = await run_command("schedule", "create", "beat", "ping", "--every", "30", "--paused", *at)
    assert code == 0
    assert out.splitlines()[1].split()[:4] == ["beat", "30s", "paused", "-"]

    code, out, _ = await run_command("schedule", "get", "nightly", "--json", *at)
    got = json.loads(out)["schedule"]
    assert (got["cron"], got["timeZone"], got["template"]["priority"]) == ("0 3 * * *", "Europe/Paris", 20)
    assert got["template"]["metadata"] == {"team": "ops"}

    code, out, err = await run_command("schedule", "list", "--limit", "1", *at)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["nightly"]
    assert err.startswith("more: --page-token ")
    code, out, err = await run_command("schedule", "list", "--limit", "1", "--all", *at)
    assert ([line.split()[0] for line in out.splitlines()[1:]], err) == (["nightly", "beat"], "")

    code, out, _ = await run_command("schedule", "pause", "nightly", *at)
    assert out.splitlines()[1].split()[7] == "paused"
    code, out, _ = await run_command("schedule", "resume", "beat", *at)
    assert out.splitlines()[1].split()[2] == "running"
    code, out, _ = await run_command("schedule", "delete", "beat", *at)
    assert (code, out.strip()) == (0, "deleted schedule beat")

    code, _, err = await run_command("schedule", "get", "beat", *at)
    assert (code, err.strip()) == (1, "error: NOT_FOUND: Schedule beat does not exist")
    code, _, err = await run_command("schedule", "create", "bad", "x", "--cron", "61 * * * *", *at)
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT: cron '61 * * * *' is not a valid cron expression")
    code, _, err = await run_command(
        "schedule", "create", "bad", "x", "--every", "5", "--metadata", "[1]", *at
    )
    assert code == 2
    assert err.startswith("error: --metadata must be a JSON object")
