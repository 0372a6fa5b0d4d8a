"""The package as a user installs it: a built wheel, outside the checkout, serves."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from claudebench.ports import free_port
from claudebench.scripts.registry import default_lua_dir, load_scripts
from tests.server_process import wait_serving
from tools.gen_protos import ROOT


def test_the_scripts_live_in_the_package_only() -> None:
    assert default_lua_dir() == ROOT / "service" / "claudebench" / "lua"
    assert load_scripts()
    # A script left at the old place (e.g. by a merge) would not ship in the wheel.
    assert not (ROOT / "lua").exists()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_built_wheel_installed_elsewhere_serves(tmp_path: Path, redis_server_url: str) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
         str(ROOT)],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("claudebench-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The dependencies come from the test environment (no download); claudebench from the wheel,
    # whose own folder comes first on sys.path.
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
    )
    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "from claudebench.scripts.registry import default_lua_dir as d; print(d())"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""},
    ).stdout.strip()  # fmt: skip
    assert where == str(site / "claudebench" / "lua")

    port = free_port()
    environment = {**os.environ, "PYTHONPATH": "", "CLAUDEBENCH_REDIS_URL": redis_server_url}
    environment.pop("CLAUDEBENCH_LUA_DIR", None)
    process = subprocess.Popen(
        [python, "-m", "claudebench", "serve", "--listen", f"127.0.0.1:{port}", "--namespace", "wheel"],
        cwd=tmp_path, env=environment,
    )  # fmt: skip
    try:
        wait_serving(process, port)
    finally:
        process.terminate()
        process.wait(timeout=20)
