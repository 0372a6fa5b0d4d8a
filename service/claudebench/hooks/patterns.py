"""The regular expressions of the hook rules, on RE2: matching time is linear in the input.

Python's `re` backtracks: a pattern such as `(a+)+$`, or `-\\w*R\\w*` followed by more pattern, can
take seconds to exponential time on a crafted command, and it holds the event loop (and the GIL)
while it runs. RE2 (the `google-re2` package) compiles a pattern to an automaton and never
backtracks, so a match costs time linear in the input whatever the pattern; it also releases the
GIL while matching. What RE2 cannot compile (backreferences, lookaround) is refused when a tool is
configured.

A pattern that compiles to a large program can still make each input byte expensive (RE2 falls
back from its DFA to its NFA when the DFA's memory runs out), so configured patterns are also
bounded by program size: per pattern and per tool.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import re2

# Per pattern and per tool, in RE2 program instructions. Measured on a 64 KiB input: a program of
# about 1,000 instructions stays within its DFA memory and scans in a few ms at worst, while
# programs past ~3,000 instructions can fall back to the NFA and take 0.5 s or more.
MAX_PATTERN_PROGRAM = 1000
MAX_TOTAL_PROGRAM = 5000
# Memory for one compiled expression and its DFA cache (RE2's default is 8 MiB).
_MAX_MEM = 1 << 20
_CACHED_PATTERNS = 128


class PatternError(ValueError):
    """A configured pattern RE2 cannot compile, or one too large to match in bounded time."""


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


class Pattern:
    """One compiled RE2 expression; `search` answers where it first matches, in linear time."""

    __slots__ = ("_regexp", "program_size", "text")

    def __init__(self, text: str, case_sensitive: bool) -> None:
        options = re2.Options()
        options.case_sensitive = case_sensitive
        options.never_capture = True  # only whether and where: the cheapest matching RE2 has
        options.log_errors = False
        options.max_mem = _MAX_MEM
        try:
            self._regexp = re2.compile(text, options)
        except re2.error as exc:
            why = exc.args[0] if exc.args else ""
            why = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
            raise PatternError(f"is not a valid regular expression in RE2 syntax: {why}") from None
        self.text = text
        self.program_size = int(self._regexp.programsize)

    def search(self, text: str) -> Span | None:
        found = self._regexp.search(text)
        return None if found is None else Span(int(found.start()), int(found.end()))

    def match(self, text: str) -> Span | None:
        """Anchored at the start of `text`."""
        found = self._regexp.match(text)
        return None if found is None else Span(int(found.start()), int(found.end()))


def builtin(text: str) -> Pattern:
    """A rule of this package (case-insensitive, like the rules it replaces)."""
    return Pattern(text, case_sensitive=False)


@functools.lru_cache(maxsize=_CACHED_PATTERNS)
def deny_pattern(text: str) -> Pattern:
    """A configured deny pattern, compiled once; PatternError says why it cannot be used."""
    pattern = Pattern(text, case_sensitive=False)
    if pattern.program_size > MAX_PATTERN_PROGRAM:
        raise PatternError(
            f"compiles to {pattern.program_size} RE2 instructions; the limit is {MAX_PATTERN_PROGRAM} "
            "(large counted repetitions such as {1,500} or Unicode classes make programs large)"
        )
    return pattern


def deny_patterns(texts: list[str]) -> list[Pattern]:
    """All of a tool's deny patterns; PatternError names the first unusable one."""
    compiled = []
    for text in texts:
        try:
            compiled.append(deny_pattern(text))
        except PatternError as exc:
            raise PatternError(f"deny pattern {text[:60]!r} {exc}") from None
    total = sum(p.program_size for p in compiled)
    if total > MAX_TOTAL_PROGRAM:
        raise PatternError(
            f"the deny patterns compile to {total} RE2 instructions together; "
            f"the limit is {MAX_TOTAL_PROGRAM}"
        )
    return compiled
