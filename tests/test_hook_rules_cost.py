"""Hook rules cost time linear in the input: pathological commands for every rule, and hostile
configured patterns, are decided right and fast (issue 15, finding 1).

Before RE2, `grep -` + "r" * 24000 took ~29 s of event loop and `(a+)+$` never finished. Timing
is asserted twice, both robustly: each 64 KiB decision within a generous second (the requirement is
50 ms), and the cost of 8N characters against N characters, which grows 8x when linear and 64x when
quadratic (the bound allows 24x, for noise and fixed costs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from claudebench.hooks import patterns
from claudebench.hooks.config import HookConfigError, validate_config
from claudebench.hooks.rules import evaluate

SIZE = 64 * 1024 - 200  # what fits a PreToolUse params of 64 KiB as JSON

# (name, command of about n characters, allowed?, a fragment of the reason)
Case = tuple[str, Callable[[int], str], bool, str]
COMMANDS: list[Case] = [
    ("grep -rrr", lambda n: "grep -" + "r" * n, True, ""),
    ("grep -r word /", lambda n: "grep -" + "r" * n + " x /", True, "searches the whole filesystem"),
    ("grep -r spaces", lambda n: "grep -r" + " x" * (n // 2), True, ""),
    ("ls -RRR", lambda n: "ls -" + "R" * n, True, ""),
    ("ls -RRR /", lambda n: "ls -" + "R" * n + " /", True, "searches the whole filesystem"),
    ("chmod -RRR", lambda n: "chmod -" + "R" * n, True, ""),
    ("chmod -RRR 777 /", lambda n: "chmod -" + "R" * n + " 777 /", False, "opens up the whole filesystem"),
    ("rm -rrr", lambda n: "rm -" + "r" * n, True, ""),
    ("rm -r -r -r", lambda n: "rm" + " -r" * (n // 3), True, ""),
    ("rm -r ... -f", lambda n: "rm" + " -r" * (n // 3) + " -f", False, "recursively and by force"),
    ("rm words -rf", lambda n: "rm" + " x" * (n // 2) + " -rf", False, "recursively and by force"),
    ("rm -- flags", lambda n: "rm -r --" + " -f" * (n // 3), True, ""),
    ("segments", lambda n: "a;" * (n // 2), True, ""),
    ("segments, rm last", lambda n: "a;" * (n // 2) + "rm -rf /", False, "recursively and by force"),
    ("$( openers", lambda n: "$(" * (n // 2), True, ""),
    ("( openers", lambda n: "(" * n, True, ""),
    ("sudo options", lambda n: "sudo" + " -a" * (n // 3) + " ls", True, "sudo removed"),
    ("sudo blanks", lambda n: "sudo" + " " * n + "ls", True, "sudo removed"),
    ("sudo dashes", lambda n: "sudo -" + "-" * n, True, ""),
    ("drop blanks", lambda n: "drop" + " " * n + "x", True, ""),
    ("truncate blanks", lambda n: "truncate" + " " * n + "x", True, ""),
    ("dd without of=", lambda n: "dd" + " x" * (n // 2), True, ""),
    ("dd of=/dev/x", lambda n: "dd" + " of=/dev/x" * (n // 10), True, ""),
    ("dd then of=/dev/sda", lambda n: "dd" + " x" * (n // 2) + " of=/dev/sda", False, "disk device"),
    ("find / words", lambda n: "find /" + " -x" * (n // 3), True, "searches the whole filesystem"),
    ("find / -delete", lambda n: "find /" + " -x" * (n // 3) + " -delete", False, "whole filesystem"),
    ("fork bomb prefix", lambda n: ":(){ " + " " * n, True, ""),
    ("del blanks", lambda n: "del" + " " * n + "x", True, ""),
    ("> blanks", lambda n: ">" + " " * n + "x", True, ""),
    ("large-large-", lambda n: "large-" * (n // 6), True, ""),
    ("mkfs.mkfs.", lambda n: "mkfs." * (n // 5) + "x", False, "formats a disk"),
]
PATHS: list[Case] = [
    ("../../", lambda n: "/tmp/" + "../" * (n // 3) + "etc/passwd", False, "Cannot modify system directory"),
    ("////", lambda n: "/" * n + "home/x", True, ""),
    ("C:\\\\\\", lambda n: "C:" + "\\" * n, True, ""),
]
# A configured pattern, a text that makes a backtracking engine explode on it, the decision.
HOSTILE: list[tuple[str, Callable[[int], str], bool]] = [
    ("(a+)+$", lambda n: "a" * n + "!", True),
    ("(a+)+$", lambda n: "a" * n, False),
    ("(x+x+)+y", lambda n: "x" * n, True),
    ("(.*a){20}", lambda n: "a" * n, False),
    (r"(\w+\s?)+$", lambda n: "ab " * (n // 3) + "!", True),
    ("^(a|aa)+$", lambda n: "a" * n + "b", True),
]


def _decide(tool: str, params: Any, config: dict[str, Any] | None = None) -> tuple[Any, float]:
    start = time.perf_counter()
    decision = evaluate(tool, params, config)
    return decision, time.perf_counter() - start


def _check(decision: Any, allowed: bool, fragment: str) -> None:
    assert decision.allow is allowed, decision.reason
    assert fragment in decision.reason


def _call(case: Case, size: int) -> tuple[str, dict[str, str]]:
    """A command case as a Bash call, a path case as a Write call."""
    make = case[1]
    return ("Bash", {"command": make(size)}) if case in COMMANDS else ("Write", {"file_path": make(size)})


@pytest.mark.parametrize("case", COMMANDS + PATHS, ids=[c[0] for c in COMMANDS + PATHS])
def test_a_pathological_input_is_decided_right_and_fast(case: Case) -> None:
    name, _, allowed, fragment = case
    decision, seconds = _decide(*_call(case, SIZE))
    _check(decision, allowed, fragment)
    assert seconds < 1.0, f"{name}: {seconds:.2f} s for {SIZE} characters"


@pytest.mark.parametrize(("pattern", "text", "allowed"), HOSTILE, ids=[f"{h[0]} {h[2]}" for h in HOSTILE])
def test_a_hostile_configured_pattern_is_decided_right_and_fast(
    pattern: str, text: Callable[[int], str], allowed: bool
) -> None:
    config = validate_config({"denyPatterns": [pattern]})
    decision, seconds = _decide("Bash", {"command": text(SIZE)}, config)
    assert decision.allow is allowed, decision.reason
    assert seconds < 1.0, f"{pattern}: {seconds:.2f} s for {SIZE} characters"


def _cost(size: int) -> float:
    """The least of three runs of every pathological case at this size (least: noise only adds)."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for case in COMMANDS + PATHS:
            evaluate(*_call(case, size), None)
        for pattern, text, _ in HOSTILE:
            evaluate("Bash", {"command": text(size)}, {"denyPatterns": [pattern]})
        runs.append(time.perf_counter() - start)
    return min(runs)


def test_the_cost_grows_linearly_with_the_input() -> None:
    small, large = _cost(SIZE // 8), _cost(SIZE)
    assert large < 24 * small, (
        f"{SIZE // 8} chars: {small * 1000:.1f} ms, {SIZE} chars: {large * 1000:.1f} ms"
    )


def test_configured_patterns_are_matched_by_re2() -> None:
    compiled = patterns.deny_pattern("(a+)+$")
    assert type(compiled._regexp).__module__ == "re2"


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a)\1", "not a valid regular expression in RE2 syntax"),  # a backreference: RE2 has none
        (r"rm(?=\s)", "not a valid regular expression in RE2 syntax"),  # lookahead
        (r"(?<!x)rm", "not a valid regular expression in RE2 syntax"),  # lookbehind
        (r"(.{1,100}){1,10}x", "RE2 instructions; the limit is 1000"),
    ],
)
def test_a_pattern_re2_cannot_run_in_linear_time_is_refused_by_name(pattern: str, why: str) -> None:
    with pytest.raises(HookConfigError) as refused:
        validate_config({"denyPatterns": ["ok", pattern]})
    assert repr(pattern[:60]) in str(refused.value)
    assert why in str(refused.value)


def test_patterns_too_large_together_are_refused() -> None:
    pattern = "[ab]{1,%d}c"  # about 2 instructions per repetition
    many = [pattern % (300 + i) for i in range(10)]
    for one in many:
        assert patterns.deny_pattern(one).program_size <= patterns.MAX_PATTERN_PROGRAM
    with pytest.raises(HookConfigError, match="together; the limit is 5000"):
        validate_config({"denyPatterns": many})


def test_a_stored_pattern_re2_cannot_compile_denies_the_call() -> None:
    """Configurations stored before this check: refuse the call rather than skip the pattern."""
    decision = evaluate("Bash", {"command": "ls"}, {"denyPatterns": [r"(a)\1"]})
    assert not decision.allow
    assert "configure Bash again" in decision.reason
