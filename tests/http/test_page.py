"""The dashboard page's files: all shipped in the wheel, served, and nothing loaded from elsewhere."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from claudebench.api.http.app import STATIC_DIR, DashboardServer
from claudebench.server import ClaudebenchServer
from tools.gen_protos import ROOT

PAGE_FILES = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())


def test_every_page_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["claudebench.api.http"]
    for path in PAGE_FILES:
        relative = path.relative_to(STATIC_DIR.parent).as_posix()
        # setuptools globs do not cross directories: static/* is not static/js/main.js.
        depth = relative.count("/")
        matched = [p for p in patterns if fnmatch.fnmatch(relative, p) and p.count("/") == depth]
        assert matched, f"{relative} would not ship in the wheel"


def test_the_page_refers_to_nothing_outside_the_server() -> None:
    for path in PAGE_FILES:
        if path.suffix not in (".html", ".js", ".css") or "vendor" in path.parts:
            continue
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path
        if path.suffix == ".js":
            for target in re.findall(r'^import .* from "([^"]+)";$', text, re.M):
                assert target.startswith("./"), (path, target)
                assert (path.parent / target).is_file(), (path, target)


@pytest.fixture
async def http(server: ClaudebenchServer) -> AsyncIterator[str]:
    dashboard = DashboardServer(server.dashboard())
    port = await dashboard.start("127.0.0.1:0")
    yield f"http://127.0.0.1:{port}"
    await dashboard.stop()


async def test_the_page_and_each_of_its_files_are_served(http: str) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{http}/") as r:
            assert r.status == 200
            page = await r.text()
        for reference in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
            async with client.get(f"{http}{reference}") as r:
                assert r.status == 200, reference
        for path in PAGE_FILES:
            url = f"{http}/static/{path.relative_to(STATIC_DIR).as_posix()}"
            async with client.get(url) as r:
                assert r.status == 200, url
                assert await r.read() == path.read_bytes()
                if path.suffix == ".js":
                    assert r.content_type in ("application/javascript", "text/javascript"), url


async def test_the_page_may_run_only_its_own_files(http: str) -> None:
    async with aiohttp.ClientSession() as client, client.get(f"{http}/") as r:
        policy = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "connect-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert r.headers["X-Content-Type-Options"] == "nosniff"
