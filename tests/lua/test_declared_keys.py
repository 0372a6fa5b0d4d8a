"""Every key a script touches comes from KEYS: no script builds a key name, so each runs on Redis
Cluster (the client routes by KEYS) and on proxies that enforce declared keys.

A static check of every script as Redis runs it (helpers included): each redis.call/pcall's key
argument must be KEYS[...] itself, or a variable or table field bound from KEYS, or a parameter of a
helper; and none may be a literal or a concatenation.
"""

from __future__ import annotations

import re

import pytest

from claudebench.scripts.registry import ScriptSpec, load_scripts

# redis.call('CMD', <key expression>, ...) -- the expression up to the next top-level comma or ')'.
_CALL = re.compile(r"redis\.p?call\(\s*'([A-Z]+)'\s*(?:,\s*([^,)]+(?:\[[^\]]*\])?))?")
_KEYLESS = {"TIME"}
_PATH = re.compile(r"^([A-Za-z_]\w*)((?:\.\w+|\[[^\]]+\])*)$")
# `local a, b = ...` / `a = ...` / `x.y = ...` lines and the names they bind.
_ASSIGN = re.compile(r"^\s*(?:local\s+)?([\w.,\s\[\]#+]+?)\s*=(?!=)\s*(.*)$")
_PARAMS = re.compile(r"function\s*[\w.:]*\(([^)]*)\)")
_FOR = re.compile(r"^\s*for\s+([\w,\s]+?)\s+(?:=|in)\s")


def key_expressions(spec: ScriptSpec) -> list[tuple[str, str]]:
    """(command, key expression) for every Redis call in the script's source."""
    code = "\n".join(line.split("--", 1)[0] for line in spec.source.splitlines())
    return [(m.group(1), (m.group(2) or "").strip()) for m in _CALL.finditer(code)]


def _statements(spec: ScriptSpec) -> list[str]:
    """The source without comments, a statement continued after ',' or '=' joined into one line."""
    code = "\n".join(line.split("--", 1)[0].rstrip() for line in spec.source.splitlines())
    return re.sub(r"([,=])\s*\n\s*", r"\1 ", code).splitlines()


def bound_from_keys(spec: ScriptSpec) -> set[str]:
    """Names assigned from KEYS or from names so bound (to a fixed point), and helper parameters.

    A multiple assignment binds all of its targets: an over-approximation the concatenation check
    below makes safe."""
    names: set[str] = {"KEYS"}
    assignments: list[tuple[set[str], str]] = []
    for line in _statements(spec):
        if m := _ASSIGN.match(line):
            targets = {re.split(r"[.\[]", t.strip())[0] for t in m.group(1).split(",")}
            assignments.append((targets, m.group(2)))
        for params in _PARAMS.findall(line):
            names.update(p.strip() for p in params.split(",") if p.strip())
        if m := _FOR.match(line):
            names.update(v.strip() for v in m.group(1).split(","))
    changed = True
    while changed:
        changed = False
        for targets, value in assignments:
            if targets - names and set(re.findall(r"[A-Za-z_]\w*", value)) & names:
                names |= targets
                changed = True
    return names


SCRIPTS = load_scripts()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_key_comes_from_keys(name: str) -> None:
    spec = SCRIPTS[name]
    bound = bound_from_keys(spec)
    calls = key_expressions(spec)
    assert calls, f"{name} makes no Redis call?"
    for command, expression in calls:
        if command in _KEYLESS:
            continue
        assert "'" not in expression, f"{name}: {command} on a literal key"
        assert '"' not in expression, f"{name}: {command} on a literal key"
        assert ".." not in expression, f"{name}: {command} on a key built by concatenation"
        match = _PATH.match(expression)
        assert match, f"{name}: {command} key {expression!r} is not a variable or KEYS[...]"
        root = match.group(1)
        assert root == "KEYS" or root in bound, (
            f"{name}: {command} uses key {expression!r}, which is not bound from KEYS"
        )


def test_no_script_concatenates_into_a_key_variable() -> None:
    """A variable that names a key is never assigned a concatenation (e.g. prefix .. id)."""
    for name, spec in SCRIPTS.items():
        key_roots = {
            m.group(1)
            for _, expression in key_expressions(spec)
            if (m := _PATH.match(expression)) and m.group(1) != "KEYS"
        }
        for line in _statements(spec):
            if (m := _ASSIGN.match(line)) and ".." in m.group(2):
                targets = {re.split(r"[.\[]", t.strip())[0] for t in m.group(1).split(",")}
                assert not targets & key_roots, f"{name}: a key is built by concatenation: {line}"
