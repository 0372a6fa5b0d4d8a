"""`claudebench hook pre-tool-use|post-tool-use` as Claude Code runs it: real-shaped hook JSON piped
into the command (a subprocess) against a running server, and the error paths."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from claudebench.server import ClaudebenchServer


async def hook(event: str, stdin: bytes, *args: str) -> tuple[int, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claudebench", "hook", event, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(stdin), 30)
    assert process.returncode is not None
    return process.returncode, json.loads(out)


def payload(tool: str, tool_input: dict[str, Any], **more: Any) -> bytes:
    base = {
        "session_id": "s-1",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/work",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01",
    }
    return json.dumps({**base, **more}).encode()


@pytest.mark.parametrize(
    ("tool", "tool_input", "decision", "updated"),
    [
        ("Bash", {"command": "rm -rf /", "description": "wipe"}, "deny", None),
        ("Bash", {"command": "sudo ls", "timeout": 1000}, "allow", {"command": "ls", "timeout": 1000}),
        ("Write", {"file_path": "/etc/passwd", "content": "x"}, "deny", None),
        ("Edit", {"file_path": "/work/a.py", "old_string": "a", "new_string": "b"}, "allow", None),
        ("mcp__github__create_issue", {"owner": "o", "repo": "r", "title": "t"}, "allow", None),
    ],
)
async def test_pre_tool_use_answers_in_claude_codes_format(
    server: ClaudebenchServer, tool: str, tool_input: dict[str, Any], decision: str, updated: Any
) -> None:
    code, out = await hook("pre-tool-use", payload(tool, tool_input), "--server", f"127.0.0.1:{server.port}")
    assert code == 0
    specific = out["hookSpecificOutput"]
    assert specific["hookEventName"] == "PreToolUse"
    assert specific["permissionDecision"] == decision
    assert specific.get("updatedInput") == updated
    if decision == "deny":
        assert specific["permissionDecisionReason"]


async def test_post_tool_use_records_the_result(server: ClaudebenchServer) -> None:
    body = payload("Bash", {"command": "ls"}, hook_event_name="PostToolUse", tool_response={"stdout": "a"})
    code, out = await hook("post-tool-use", body, "--server", f"127.0.0.1:{server.port}")
    assert (code, out) == (0, {})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_server_down_bad_json_and_deadline_follow_on_error() -> None:
    down = f"127.0.0.1:{_free_port()}"
    code, out = await hook("pre-tool-use", payload("Bash", {"command": "ls"}), "--server", down)
    assert (code, out["hookSpecificOutput"]["permissionDecision"]) == (0, "deny")
    code, out = await hook("pre-tool-use", b"{not json", "--server", down, "--on-error", "allow")
    assert code == 0
    assert "hookSpecificOutput" not in out
    assert "allowed by --on-error allow" in out["systemMessage"]
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        code, out = await hook("pre-tool-use", payload("Bash", {"command": "ls"}), "--server", address,
                               "--deadline", "0.5")  # fmt: skip
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "DEADLINE_EXCEEDED" in out["hookSpecificOutput"]["permissionDecisionReason"]


def test_the_readme_snippet_wires_both_hooks() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    snippet = readme.split("Wiring both in `.claude/settings.json`")[1].split("```json\n")[1].split("```")[0]
    hooks = json.loads(snippet)["hooks"]
    commands = {event: entry[0]["hooks"][0]["command"] for event, entry in hooks.items()}
    assert commands["PreToolUse"].startswith("claudebench hook pre-tool-use")
    assert commands["PostToolUse"].startswith("claudebench hook post-tool-use")
