"""The screenshot helper asks again after Chromium's transient refusal, and only then."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Error

from tests.support import screenshots


class Page:
    """Stands in for a Playwright page whose capture fails ``failures`` times first."""

    def __init__(self, failures: int, message: str = screenshots.TRANSIENT) -> None:
        self.failures = failures
        self.message = message
        self.calls = 0

    def screenshot(self, **_: Any) -> bytes:
        self.calls += 1
        if self.calls <= self.failures:
            raise Error(f"Page.screenshot: Protocol error (Page.captureScreenshot): {self.message}")
        return b"\x89PNG"


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screenshots, "PAUSE_SECONDS", 0)


def test_a_transient_refusal_is_asked_again() -> None:
    page = Page(failures=screenshots.ATTEMPTS - 1)
    assert screenshots.take(page) == b"\x89PNG"
    assert page.calls == screenshots.ATTEMPTS


def test_a_refusal_that_persists_fails() -> None:
    page = Page(failures=screenshots.ATTEMPTS)
    with pytest.raises(Error, match=screenshots.TRANSIENT):
        screenshots.take(page)
    assert page.calls == screenshots.ATTEMPTS


def test_any_other_error_fails_at_once() -> None:
    page = Page(failures=1, message="Target page, context or browser has been closed")
    with pytest.raises(Error, match="has been closed"):
        screenshots.take(page)
    assert page.calls == 1
