"""The built-in hook rules, evaluated on a tool call's parameters.

Compared with the original: a command is split into its segments (`;`, `&&`, `||`, `|`, newlines,
backticks and `$(...)`) and every segment is checked, so `ls && rm -rf /` is caught; tool names
match exactly (case-insensitive), not by substring; flags are recognised in any spelling
(`-rf`, `-r -f`, `--recursive --force`); paths are normalised before the system-directory check
(`/tmp/../etc/passwd`); both the command and the paths of a call are inspected.
"""

from __future__ import annotations

import copy
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

SHELL_TOOLS = frozenset({"bash", "shell", "command", "sh", "zsh", "terminal", "exec"})
WRITE_TOOLS = frozenset(
    {"write", "edit", "multiedit", "notebookedit", "file.write", "file.delete", "str_replace_editor"}
)
COMMAND_FIELDS = ("command", "cmd", "script")
PATH_FIELDS = ("file_path", "path", "notebook_path")
RULE_NAMES = ("dangerous_operations", "system_protection", "privilege_stripping", "performance_warnings")

_SEGMENT_SPLIT = re.compile(r"\|\||&&|[;|\n`]|\$\(")
_SUDO = re.compile(r"^\s*sudo(\s+-{1,2}[A-Za-z-]+(=\S+)?)*\s+", re.IGNORECASE)

_DANGEROUS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(drop)\s+(table|database|schema)\b", re.IGNORECASE), "drops a table, database or schema"),
    (re.compile(r"\btruncate\s+table\b", re.IGNORECASE), "truncates a table"),
    (re.compile(r"\bmkfs(\.\w+)?\b", re.IGNORECASE), "formats a disk"),
    (re.compile(r"\bformat\s+[a-z]:", re.IGNORECASE), "formats a disk"),
    (re.compile(r"\b(fdisk|wipefs|parted)\b", re.IGNORECASE), "rewrites a partition table"),
    (
        re.compile(r"\bdd\b.*\bof=/dev/(sd|hd|nvme|disk|vd|xvd|mmcblk)", re.IGNORECASE),
        "writes over a disk device",
    ),
    (re.compile(r"\bshred\b", re.IGNORECASE), "shreds files"),
    (
        re.compile(r"\bchmod\s+(-\w*R\w*|--recursive)\s+0?777\s+/(\s|$)", re.IGNORECASE),
        "opens up the whole filesystem",
    ),
    (re.compile(r"\bfind\s+/(\s|$).*-delete\b", re.IGNORECASE), "deletes across the whole filesystem"),
    (re.compile(r":\(\)\s*\{\s*:\|:&\s*\};\s*:"), "is a fork bomb"),
    (re.compile(r"\bdel\s+(/[fsq]\s*)+", re.IGNORECASE), "force-deletes files"),
    (re.compile(r">\s*/dev/(sd|hd|nvme|disk)", re.IGNORECASE), "writes over a disk device"),
)
_WHOLE_FS_SEARCH = re.compile(
    r"\b(find|du|grep\s+-\w*r\w*(\s+\S+)?|ls\s+-\w*R\w*|locate)\s+/(\s|$)", re.IGNORECASE
)
_LARGE_FILE = re.compile(r"\b(very-)?large-file\b", re.IGNORECASE)
_SYSTEM_DIRS = ("/etc", "/sys", "/boot", "/proc", "/dev", "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/lib")
_WINDOWS_SYSTEM = re.compile(r"^[a-z]:\\(windows|system32)\\", re.IGNORECASE)


@dataclass
class Decision:
    allow: bool
    reason: str = ""
    modified: Any = None
    warnings: list[str] = field(default_factory=list)


def segments(command: str) -> list[str]:
    return [s.strip() for s in _SEGMENT_SPLIT.split(command) if s.strip()]


def _is_recursive_forced_rm(segment: str) -> bool:
    words = _SUDO.sub("", segment).split()
    if not words or words[0].lower() not in ("rm", "/bin/rm", "/usr/bin/rm"):
        return False
    recursive = force = False
    for word in words[1:]:
        if word == "--":
            break
        if word.startswith("--"):
            recursive |= word == "--recursive"
            force |= word == "--force"
        elif word.startswith("-"):
            recursive |= "r" in word.lower()
            force |= "f" in word.lower()
    return recursive and force


def dangerous_reason(command: str) -> str | None:
    """Why the command is destructive, or None."""
    for segment in segments(command):
        if _is_recursive_forced_rm(segment):
            return f"dangerous command blocked: recursive forced delete ({segment[:80]})"
        stripped = _SUDO.sub("", segment)
        for pattern, what in _DANGEROUS:
            if pattern.search(stripped):
                return f"dangerous command blocked: it {what} ({segment[:80]})"
    return None


def system_path_reason(path: str) -> str | None:
    if _WINDOWS_SYSTEM.search(path):
        return f"Cannot modify system directory: {path[:120]}"
    normalised = posixpath.normpath("/" + path.lstrip("/")) if path.startswith("/") else path
    for directory in _SYSTEM_DIRS:
        if normalised == directory or normalised.startswith(directory + "/"):
            return f"Cannot modify system directory: {normalised[:120]}"
    return None


def strip_sudo(command: str) -> str | None:
    """The command without a leading sudo (and its options), or None if there was none."""
    stripped = _SUDO.sub("", command, count=1)
    return stripped if stripped != command else None


def warnings_for(command: str) -> list[str]:
    found = []
    for segment in segments(command):
        if _WHOLE_FS_SEARCH.search(segment):
            found.append(f"searches the whole filesystem ({segment[:80]}); it may be slow")
        if _LARGE_FILE.search(segment):
            found.append(f"reads a very large file ({segment[:80]})")
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
    for pattern in config.get("denyPatterns", []):
        compiled = re.compile(pattern, re.IGNORECASE)
        for text in texts:
            if compiled.search(text):
                return Decision(allow=False, reason=f"matches a denied pattern of {tool}: {pattern}")
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
