"""A tool's hook configuration: validated before it is stored, so HOOK_VALIDATE can trust it."""

from __future__ import annotations

import re
from typing import Any

from claudebench.api.validation import InvalidArgument
from claudebench.hooks.rules import RULE_NAMES

MAX_DENY_PATTERNS = 50
MAX_PATTERN_CHARS = 200
MAX_RATE_LIMIT = 100_000
_KNOWN = {"enabled", "rules", "denyPatterns", "rateLimit"}


def validate_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The normalised configuration; InvalidArgument naming the first problem."""
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise InvalidArgument(f"unknown hook configuration keys {unknown}; known: {sorted(_KNOWN)}")
    config: dict[str, Any] = {}
    if "enabled" in raw:
        if not isinstance(raw["enabled"], bool):
            raise InvalidArgument("enabled must be true or false")
        config["enabled"] = raw["enabled"]
    if "rules" in raw:
        rules = raw["rules"]
        if not isinstance(rules, dict) or not all(isinstance(v, bool) for v in rules.values()):
            raise InvalidArgument(f"rules must map rule names {list(RULE_NAMES)} to true/false")
        bad = sorted(set(rules) - set(RULE_NAMES))
        if bad:
            raise InvalidArgument(f"unknown rules {bad}; known: {list(RULE_NAMES)}")
        config["rules"] = rules
    if "denyPatterns" in raw:
        patterns = raw["denyPatterns"]
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise InvalidArgument("denyPatterns must be a list of non-empty regular expressions")
        if len(patterns) > MAX_DENY_PATTERNS:
            raise InvalidArgument(f"{len(patterns)} denyPatterns; the limit is {MAX_DENY_PATTERNS}")
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_CHARS:
                raise InvalidArgument(f"a deny pattern is longer than {MAX_PATTERN_CHARS} characters")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidArgument(
                    f"deny pattern {pattern[:40]!r} is not a valid regular expression: {exc}"
                ) from None
        config["denyPatterns"] = patterns
    if "rateLimit" in raw:
        limit = raw["rateLimit"]
        # Struct numbers arrive as floats.
        if not isinstance(limit, int | float) or isinstance(limit, bool) or limit != int(limit):
            raise InvalidArgument("rateLimit must be a whole number of calls per window")
        if not 1 <= limit <= MAX_RATE_LIMIT:
            raise InvalidArgument(f"rateLimit must be between 1 and {MAX_RATE_LIMIT}")
        config["rateLimit"] = int(limit)
    return config
