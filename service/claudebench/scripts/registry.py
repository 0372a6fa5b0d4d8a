"""Reads every ``lua/*.lua`` script and its header contract.

The scripts ship inside the package (``service/claudebench/lua``, package data found through
importlib.resources); CLAUDEBENCH_LUA_DIR points the server at another folder. A script's header is
its interface: the name and purpose on the first line, one ``KEYS[i] name`` and one ``ARGV[i] name``
line per input (``KEYS[i..]``/``ARGV[i..]`` for a variable tail), the result codes under "Returns",
and ``include:`` lines naming helper files under ``lua/lib`` that are prepended when loading. The
executor checks every call against it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from claudebench.scripts.results import ResultCode

_NAME = re.compile(r"^-- ([A-Z][A-Z0-9_]+): \S")
_INPUT = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\]\s+([a-z_]+)\b")
_CODE = re.compile(r"^--   ([A-Z][A-Z_]+)\s")
_INCLUDE = re.compile(r"^-- include: (\S+)$")


def default_lua_dir() -> Path:
    """The scripts shipped in the package (a folder on disk in every way it is installed: a wheel
    unpacks it, an editable install points into the checkout)."""
    return Path(str(resources.files("claudebench") / "lua"))


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """One script: its contract (from the header) and the source Redis runs."""

    name: str
    path: Path
    keys: tuple[str, ...]
    variadic_keys: str | None
    args: tuple[str, ...]
    variadic_args: str | None
    codes: frozenset[ResultCode]
    source: str
    sha: str


def _ordered(found: dict[int, str], kind: str, path: Path) -> tuple[str, ...]:
    if sorted(found) != list(range(1, len(found) + 1)):
        raise ValueError(f"{path.name}: {kind} indexes must run 1..n, found {sorted(found)}")
    return tuple(found[i] for i in sorted(found))


def parse_script(path: Path) -> ScriptSpec:
    """Parse one script file's header and assemble its source with its includes."""
    text = path.read_text()
    header = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    if not header or not (match := _NAME.match(header[0])):
        raise ValueError(f"{path.name}: the first line must be '-- NAME: purpose'")
    name = match.group(1)

    fixed: dict[str, dict[int, str]] = {"KEYS": {}, "ARGV": {}}
    variadic: dict[str, str | None] = {"KEYS": None, "ARGV": None}
    codes: set[ResultCode] = set()
    includes: list[str] = []
    in_returns = False
    for line in header[1:]:
        if m := _INPUT.match(line):
            kind, index, tail, input_name = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            if tail:
                variadic[kind] = input_name
            else:
                fixed[kind][index] = input_name
        elif line.startswith("-- Returns"):
            in_returns = True
        elif in_returns and (m := _CODE.match(line)):
            codes.add(ResultCode(m.group(1)))
        elif m := _INCLUDE.match(line):
            includes.append(m.group(1))
        elif line.startswith("-- ") and not line.startswith("--  "):
            in_returns = False
    if ResultCode.OK not in codes:
        raise ValueError(f"{path.name}: the header lists no OK result")

    parts = [(path.parent / include).read_text() for include in includes]
    parts.append(text)
    return ScriptSpec(
        name=name,
        path=path,
        keys=_ordered(fixed["KEYS"], "KEYS", path),
        variadic_keys=variadic["KEYS"],
        args=_ordered(fixed["ARGV"], "ARGV", path),
        variadic_args=variadic["ARGV"],
        codes=frozenset(codes),
        source=(source := "\n".join(parts)),
        sha=hashlib.sha1(source.encode()).hexdigest(),
    )


def script_version(scripts: dict[str, ScriptSpec]) -> str:
    """The version of a set of scripts: 12 hex digits of a digest of every name=SHA, sorted. Two
    servers with the same version run exactly the same Lua."""
    lines = "\n".join(f"{name}={spec.sha}" for name, spec in sorted(scripts.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:12]


def load_scripts(lua_dir: Path | None = None) -> dict[str, ScriptSpec]:
    """Every script under lua_dir (helpers under lua/lib are not scripts), keyed by name."""
    directory = lua_dir or default_lua_dir()
    specs = [parse_script(p) for p in sorted(directory.glob("*.lua"))]
    if not specs:
        raise FileNotFoundError(f"no Lua scripts found in {directory}")
    by_name = {spec.name: spec for spec in specs}
    if len(by_name) != len(specs):
        raise ValueError(f"two scripts in {directory} share a name")
    return by_name
