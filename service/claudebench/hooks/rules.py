"""The built-in hook rules, evaluated on a tool call's parameters.

Compared with the original: every segment of a command (`;`, `&&`, `||`, `|`, `&`, newlines,
backticks and `$(...)` separate them) is checked, so `ls && rm -rf /` is caught; tool names match
exactly (case-insensitive), not by substring; flags are recognised in any spelling (`-rf`,
`-r -f`, `--recursive --force`); paths are normalised before the system-directory check
(`/tmp/../etc/passwd`); both the command and the paths of a call are inspected.

Every rule is one RE2 expression over the whole command (see `patterns.py`): a segment boundary is
part of the expression rather than a Python loop over segments, so a call costs a fixed number of
linear scans of its input, whatever the input (a 64 KiB command of 30,000 segments included).
"""

from __future__ import annotations

import copy
import posixpath
from dataclasses import dataclass, field
from typing import Any

from claudebench.hooks.patterns import Pattern, PatternError, builtin, deny_patterns

SHELL_TOOLS = frozenset({"bash", "shell", "command", "sh", "zsh", "terminal", "exec"})
WRITE_TOOLS = frozenset(
    {"write", "edit", "multiedit", "notebookedit", "file.write", "file.delete", "str_replace_editor"}
)
COMMAND_FIELDS = ("command", "cmd", "script")
PATH_FIELDS = ("file_path", "path", "notebook_path")
RULE_NAMES = ("dangerous_operations", "system_protection", "privilege_stripping", "performance_warnings")

# The pieces the rules are written with. None nests a quantifier inside another that could match
# the same text twice, and RE2 would not backtrack even if one did.
_BREAK = r"[;&|\n`]"  # what ends a segment ("&&", "||" and "$(" start with one of these or "$(")
_START = rf"(?:^|{_BREAK}|\$\()[\s(){{}}!]*"  # a segment's start, past subshell and group openers
_SUDO = r"(?:sudo(?:[ \t]+-{1,2}[a-z-]+(?:=[^\s;&|`]*)?)*[ \t]+)?"
_C = r"[^\s;&|`(]"  # a character of a word ("(" starts a "$(" segment)
_D = r"[^\s;&|`(-]"  # ... other than a dash
_WORD = rf"{_C}+"
_REST = r"[^;&|\n`]*"  # the rest of a segment
_END = r"(?:[\s;&|`)]|$)"  # a word's end inside a segment
# rm's words: any but "--" (after which nothing is a flag); a flag is a one-dash word holding the
# letter (-r, -Rf, -vfr) or the long option. Each word starts with blanks, so the word before it
# has ended; the last flag is followed by _END.
_ARG = rf"[ \t]+(?:{_D}{_C}*|-{_D}{_C}*|-|--{_C}+)"
_RECURSIVE = rf"[ \t]+(?:-(?:{_D}{_C}*)?r{_C}*|--recursive)"
_FORCE = rf"[ \t]+(?:-(?:{_D}{_C}*)?f{_C}*|--force)"
_BOTH = rf"[ \t]+-(?:{_D}{_C}*)?(?:r{_C}*f|f{_C}*r){_C}*"
_RM = builtin(
    rf"{_START}{_SUDO}(?:/usr/bin/|/bin/)?rm(?:{_ARG})*"
    rf"(?:{_BOTH}|{_RECURSIVE}(?:{_ARG})*{_FORCE}|{_FORCE}(?:{_ARG})*{_RECURSIVE}){_END}"
)
_DANGEROUS: tuple[tuple[Pattern, str], ...] = (
    (_RM, "deletes recursively and by force"),
    (builtin(r"\bdrop[ \t]+(?:table|database|schema)\b"), "drops a table, database or schema"),
    (builtin(r"\btruncate[ \t]+table\b"), "truncates a table"),
    (builtin(r"\bmkfs\b"), "formats a disk"),
    (builtin(r"\bformat[ \t]+[a-z]:"), "formats a disk"),
    (builtin(r"\b(?:fdisk|wipefs|parted)\b"), "rewrites a partition table"),
    (
        builtin(rf"\bdd\b{_REST}\bof=/dev/(?:sd|hd|nvme|disk|vd|xvd|mmcblk)"),
        "writes over a disk device",
    ),
    (builtin(r"\bshred\b"), "shreds files"),
    (
        builtin(rf"\bchmod[ \t]+(?:-[a-z]*r[a-z]*|--recursive)[ \t]+0?777[ \t]+/{_END}"),
        "opens up the whole filesystem",
    ),
    (builtin(rf"\bfind[ \t]+/[ \t]{_REST}-delete\b"), "deletes across the whole filesystem"),
    (builtin(r":\(\)[ \t]*\{[ \t]*:[ \t]*\|[ \t]*:[ \t]*&[ \t]*\}[ \t]*;[ \t]*:"), "is a fork bomb"),
    (builtin(r"\bdel[ \t]+/[fsq]"), "force-deletes files"),
    (builtin(r">[ \t]*/dev/(?:sd|hd|nvme|disk)"), "writes over a disk device"),
)
_WARNINGS: tuple[tuple[Pattern, str], ...] = (
    (
        builtin(
            rf"\b(?:find|du|locate)[ \t]+/{_END}"
            rf"|\bgrep[ \t]+-\w*r\w*(?:[ \t]+{_WORD})?[ \t]+/{_END}"
            rf"|\bls[ \t]+-\w*(?-i:R)\w*[ \t]+/{_END}"
        ),
        "searches the whole filesystem ({}); it may be slow",
    ),
    (builtin(r"\blarge-file\b"), "reads a very large file ({})"),
)
_LEADING_SUDO = builtin(r"\s*sudo(?:\s+-{1,2}[a-z-]+(?:=\S+)?)*\s+")
_WINDOWS_SYSTEM = builtin(r"[a-z]:\\(?:windows|system32)\\")
_SYSTEM_DIRS = ("/etc", "/sys", "/boot", "/proc", "/dev", "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/lib")
_SEPARATORS = ";&|\n`$()!{} \t"
_BREAKS = ";&|\n`"


@dataclass
class Decision:
    allow: bool
    reason: str = ""
    modified: Any = None
    warnings: list[str] = field(default_factory=list)


def _quoted(command: str, start: int) -> str:
    """The segment a rule matched in, for a message (at most 80 characters: bounded work)."""
    segment = command[start : start + 200].lstrip(_SEPARATORS)
    for stop in _BREAKS:
        segment = segment.split(stop, 1)[0]
    return segment[:80].strip()


def dangerous_reason(command: str) -> str | None:
    """Why the command is destructive, or None."""
    for pattern, what in _DANGEROUS:
        if (span := pattern.search(command)) is not None:
            return f"dangerous command blocked: it {what} ({_quoted(command, span.start)})"
    return None


def system_path_reason(path: str) -> str | None:
    if _WINDOWS_SYSTEM.match(path) is not None:
        return f"Cannot modify system directory: {path[:120]}"
    normalised = posixpath.normpath("/" + path.lstrip("/")) if path.startswith("/") else path
    for directory in _SYSTEM_DIRS:
        if normalised == directory or normalised.startswith(directory + "/"):
            return f"Cannot modify system directory: {normalised[:120]}"
    return None


def strip_sudo(command: str) -> str | None:
    """The command without a leading sudo (and its options), or None if there was none."""
    span = _LEADING_SUDO.match(command)
    return None if span is None else command[span.end :]


def warnings_for(command: str) -> list[str]:
    """One warning per kind (the first place it applies), so a reason stays short."""
    found = []
    for pattern, what in _WARNINGS:
        if (span := pattern.search(command)) is not None:
            found.append(what.format(_quoted(command, span.start)))
    return found


def _commands(params: Any) -> list[tuple[str | None, str]]:
    """(field, command) pairs: the params themselves if a string, else the command fields."""
    if isinstance(params, str):
        return [(None, params)]
    if isinstance(params, dict):
        return [(f, params[f]) for f in COMMAND_FIELDS if isinstance(params.get(f), str)]
    return []


def _paths(params: Any) -> list[str]:
    if isinstance(params, str):
        return [params]
    if isinstance(params, dict):
        return [params[f] for f in PATH_FIELDS if isinstance(params.get(f), str)]
    return []


def evaluate(tool: str, params: Any, config: dict[str, Any] | None) -> Decision:
    """The decision for one tool call, given the tool's stored configuration (None: defaults)."""
    config = config or {}
    if config.get("enabled", True) is False:
        return Decision(allow=True, reason="hook rules disabled for this tool")
    enabled = {name: bool(config.get("rules", {}).get(name, True)) for name in RULE_NAMES}
    kind = tool.lower()
    shell, writer = kind in SHELL_TOOLS, kind in WRITE_TOOLS
    commands = _commands(params) if shell else []
    # Custom patterns apply to every tool and every string the call carries.
    texts = [c for _, c in _commands(params)] + _paths(params)
    try:
        denied = deny_patterns(config.get("denyPatterns", []))
    except PatternError as exc:
        # Stored before patterns were checked with RE2: refuse rather than skip the check.
        return Decision(allow=False, reason=f"{exc}; configure {tool} again (ConfigureHook)")
    for pattern in denied:
        for text in texts:
            if pattern.search(text) is not None:
                return Decision(allow=False, reason=f"matches a denied pattern of {tool}: {pattern.text}")
    if shell and enabled["dangerous_operations"]:
        for _, command in commands:
            if reason := dangerous_reason(command):
                return Decision(allow=False, reason=reason)
    if writer and enabled["system_protection"]:
        for path in _paths(params):
            if reason := system_path_reason(path):
                return Decision(allow=False, reason=reason)
    decision = Decision(allow=True)
    if shell and enabled["privilege_stripping"]:
        rewritten = copy.deepcopy(params)
        changed = False
        for name, command in commands:
            if (without := strip_sudo(command)) is not None:
                changed = True
                if name is None:
                    rewritten = without
                else:
                    rewritten[name] = without
        if changed:
            decision.modified = rewritten
            decision.reason = "sudo removed: commands run without elevated privileges"
    if shell and enabled["performance_warnings"]:
        for _, command in commands:
            decision.warnings.extend(warnings_for(command))
        if decision.warnings:
            decision.reason = "; ".join(
                filter(None, [decision.reason, *("warning: " + w for w in decision.warnings)])
            )
    return decision
