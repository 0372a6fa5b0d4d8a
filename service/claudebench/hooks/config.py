"""A tool's hook configuration: validated before it is stored, so HOOK_VALIDATE can trust it."""

from __future__ import annotations

from typing import Any

from claudebench.hooks.patterns import PatternError, deny_patterns
from claudebench.hooks.rules import RULE_NAMES

MAX_DENY_PATTERNS = 50
MAX_PATTERN_CHARS = 200
MAX_RATE_LIMIT = 100_000
_KNOWN = {"enabled", "rules", "denyPatterns", "rateLimit"}


class HookConfigError(ValueError):
    """The configuration is refused; the message names the first problem (INVALID_ARGUMENT)."""


def validate_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The normalised configuration; HookConfigError naming the first problem."""
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise HookConfigError(f"unknown hook configuration keys {unknown}; known: {sorted(_KNOWN)}")
    config: dict[str, Any] = {}
    if "enabled" in raw:
        if not isinstance(raw["enabled"], bool):
            raise HookConfigError("enabled must be true or false")
        config["enabled"] = raw["enabled"]
    if "rules" in raw:
        rules = raw["rules"]
        if not isinstance(rules, dict) or not all(isinstance(v, bool) for v in rules.values()):
            raise HookConfigError(f"rules must map rule names {list(RULE_NAMES)} to true/false")
        bad = sorted(set(rules) - set(RULE_NAMES))
        if bad:
            raise HookConfigError(f"unknown rules {bad}; known: {list(RULE_NAMES)}")
        config["rules"] = rules
    if "denyPatterns" in raw:
        patterns = raw["denyPatterns"]
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise HookConfigError("denyPatterns must be a list of non-empty regular expressions (RE2 syntax)")
        if len(patterns) > MAX_DENY_PATTERNS:
            raise HookConfigError(f"{len(patterns)} denyPatterns; the limit is {MAX_DENY_PATTERNS}")
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_CHARS:
                raise HookConfigError(f"a deny pattern is longer than {MAX_PATTERN_CHARS} characters")
        try:
            deny_patterns(patterns)
        except PatternError as exc:
            raise HookConfigError(str(exc)) from None
        config["denyPatterns"] = patterns
    if "rateLimit" in raw:
        limit = raw["rateLimit"]
        # Struct numbers arrive as floats.
        if not isinstance(limit, int | float) or isinstance(limit, bool) or limit != int(limit):
            raise HookConfigError("rateLimit must be a whole number of calls per window")
        if not 1 <= limit <= MAX_RATE_LIMIT:
            raise HookConfigError(f"rateLimit must be between 1 and {MAX_RATE_LIMIT}")
        config["rateLimit"] = int(limit)
    return config
