"""The README's two commands stay true: CI runs the test command exactly as written."""

from __future__ import annotations

import re

from tools.gen_protos import ROOT


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_starts_with_the_run_and_test_commands() -> None:
    run, test, *_ = readme_commands()
    assert "claudebench serve" in run
    assert "pytest" in test


def test_ci_runs_the_readme_test_command() -> None:
    test = readme_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


def test_every_setting_is_documented() -> None:
    """Each setting's environment variable appears in the README (its configuration table)."""
    from dataclasses import fields

    from claudebench.config import Settings, env_name

    readme = (ROOT / "README.md").read_text()
    missing = [env_name(f.name) for f in fields(Settings) if env_name(f.name) not in readme]
    assert missing == []
