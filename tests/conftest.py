"""Shared fixtures: one SMTP server, one browser, services that must be there in CI."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.factories import make_org, make_user
from tests.support import live_server
from tests.support.proxy import production_stack, stack  # noqa: F401 - fixtures for every test
from tests.support.smtp import SMTPServer

live_server.install()  # one request at a time where the live server shares a connection

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-results"


def require(what: str, reachable: bool) -> None:
    """Fail in CI (a missing service is a broken run), skip on a laptop without it."""
    if reachable:
        return
    if IN_CI:
        pytest.fail(f"{what} is not reachable; CI must start it", pytrace=False)
    pytest.skip(f"{what} is not reachable")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if IN_CI and "postgresql" in engine and not _port_open("127.0.0.1", 5432):
        raise pytest.UsageError("PostgreSQL is not reachable at 127.0.0.1:5432")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"


@pytest.fixture
def on_postgres() -> None:
    """Mark a test that only means something on PostgreSQL (row locks, processes)."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("runs in the PostgreSQL pass of `make test`")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    require("Redis at 127.0.0.1:6379", _port_open("127.0.0.1", 6379))
    return url


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SMTPServer, settings: Any) -> Iterator[SMTPServer]:
    """The session's SMTP server, emptied, with the portal's SMTP settings pointing at it."""
    smtp_server.clear()
    if smtp_server.controller is None:
        smtp_server.start()
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    yield smtp_server
    smtp_server.clear()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Debian Chromium for the whole session, driven by Playwright."""
    require(CHROMIUM, Path(CHROMIUM).exists())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder for this test's screenshots under test-results/."""
    folder = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "_").strip("]_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def _fresh_shared_state() -> Iterator[None]:
    """Start each test with empty rate-limit counters and cache, whatever the backend.

    Database-backed ones roll back with the test; Redis keeps them, so the test Redis
    database (its own db number, see the Makefile) is emptied here.
    """
    from django.core.cache import cache

    if settings.CONFIG.redis_url:
        from portal.core import ratelimit

        ratelimit._redis().flushdb()
        cache.clear()
    yield


# --- The people most tests need: one home for them ---------------------------------------

@pytest.fixture
def northwind(db: None) -> Any:
    """Northwind Logistics, with its verified domain northwind.example."""
    return make_org("Northwind Logistics", ["northwind.example"])


@pytest.fixture
def contoso(db: None) -> Any:
    return make_org("Contoso Freight", ["contoso.example"])


@pytest.fixture
def alice(northwind: Any) -> Any:
    """Alice Moreno, Northwind's IT lead (an organization admin)."""
    return make_user("alice@northwind.example", northwind, admin=True, full_name="Alice Moreno")
