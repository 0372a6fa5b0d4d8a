"""The claude-agent-sdk helper, with that package's real types, against a running server."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("claude_agent_sdk")

from claude_agent_sdk import HookContext, HookMatcher, PostToolUseHookInput, PreToolUseHookInput

from claudebench.client.claude_agent import hook_matchers
from claudebench.server import ClaudebenchServer


def pre_input(command: str) -> PreToolUseHookInput:
    return PreToolUseHookInput(
        session_id="s", transcript_path="/t", cwd="/w", hook_event_name="PreToolUse",
        tool_name="Bash", tool_input={"command": command}, tool_use_id="toolu_1",
    )  # fmt: skip


async def test_the_matchers_call_the_hook_service(server: ClaudebenchServer) -> None:
    hooks = hook_matchers(f"127.0.0.1:{server.port}", instance_id="agent-1")
    (pre,) = hooks["PreToolUse"]
    (post,) = hooks["PostToolUse"]
    assert isinstance(pre, HookMatcher)
    assert isinstance(post, HookMatcher)
    context = HookContext(signal=None)
    out: Any = await pre.hooks[0](pre_input("rm -rf /"), "toolu_1", context)
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny"
    out = await pre.hooks[0](pre_input("sudo ls"), "toolu_1", context)
    assert out["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert out["hookSpecificOutput"]["updatedInput"] == {"command": "ls"}
    done = PostToolUseHookInput(
        session_id="s", transcript_path="/t", cwd="/w", hook_event_name="PostToolUse", tool_name="Bash",
        tool_input={"command": "ls"}, tool_response={"stdout": "x"}, tool_use_id="toolu_1",
    )  # fmt: skip
    assert await post.hooks[0](done, "toolu_1", context) == {}
