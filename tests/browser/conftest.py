"""Browser tests: a real `claudebench serve` process, real Redis, Debian's chromium driven by
Playwright (its own browser download is never used: it cannot download here, and CI installs
chromium with apt). Outside CI a missing browser skips these tests with what to install; with
CI=true it fails them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc
import pytest

from claudebench.ports import free_port
from tests.server_process import wait_serving

INSTALL = "apt-get install -y chromium (Debian's browser) and pip install playwright (in the dev extra)"


def chromium_path() -> str | None:
    found = (
        os.environ.get("CLAUDEBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    return found if found and Path(found).exists() else None


def _unavailable(why: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}; CI must install it: {INSTALL}", pytrace=False)
    pytest.skip(f"{why}: {INSTALL}")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    executable = chromium_path()
    if executable is None:
        _unavailable("no chromium on PATH")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


@dataclass
class Served:
    """A `claudebench serve` process with its dashboard, on fixed ports so it can be restarted."""

    redis_url: str
    log_dir: Path
    tokens: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    namespace: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:8]}")
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    @property
    def log(self) -> Path:
        return self.log_dir / f"server-{self.namespace}.log"

    def start(self, grpc_port: int | None = None) -> None:
        command = [
            sys.executable, "-m", "claudebench", "serve", "--namespace", self.namespace,
            "--listen", f"127.0.0.1:{grpc_port or self.grpc_port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
        ]  # fmt: skip
        env = {**os.environ, **self.env, "CLAUDEBENCH_REDIS_URL": self.redis_url}
        env.pop("CLAUDEBENCH_AUTH_TOKENS", None)
        if self.tokens:
            env["CLAUDEBENCH_AUTH_TOKENS"] = self.tokens
        self.starts += 1
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_serving(self.process, grpc_port or self.grpc_port)
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(self.base, timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}")


@pytest.fixture
def served(redis_server_url: str, tmp_path: Path) -> Iterator[Served]:
    server = Served(redis_server_url, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def served_with_tokens(redis_server_url: str, tmp_path: Path) -> Iterator[Served]:
    server = Served(redis_server_url, tmp_path, tokens="admintok:admin,readtok:reader")
    server.start()
    yield server
    server.stop()


class Page:
    """A browser page that records console errors and any request off the server's origin (each
    is aborted: the page must work offline)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.external: list[str] = []
        self.context: Any = None
        self.page: Any = None

    async def open(self, browser: Any, width: int, height: int) -> Page:
        self.context = await browser.new_context(viewport={"width": width, "height": height})
        self.page = await self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        await self.page.route("**/*", self._route)
        return self

    async def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.base.rstrip("/")):
            await route.continue_()
        else:
            self.external.append(route.request.url)
            await route.abort()


@pytest.fixture
async def open_page(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    pages: list[Page] = []

    async def opener(base: str, width: int = 1280, height: int = 900) -> Page:
        page = await Page(base).open(browser, width, height)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        await page.context.close()
