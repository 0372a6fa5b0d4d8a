"""Without a browser the browser tests skip saying what to install, except in CI, where they fail."""

from __future__ import annotations

import pytest

from tests.browser.conftest import _unavailable


def test_a_missing_browser_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _unavailable("no chromium on PATH")


def test_a_missing_browser_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it: apt-get install -y chromium"):
        _unavailable("no chromium on PATH")
