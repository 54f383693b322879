"""The scale-out shape, for tests: two `portal serve` masters and two `portal worker`s.

Two gunicorn masters on two ports (each with its own worker processes) stand for two web
machines behind a load balancer; two workers deliver the one outbox. All four share one
PostgreSQL database (``<test database>_scale``, migrated by `portal migrate`) and the
test Redis database, and hand mail to the test SMTP server. Clients talk to either
master directly (no proxy: the test chooses which process serves each request), from
loopback addresses of their own, so each is its own client address.

Started once per module that asks for ``scale_out``; PostgreSQL pass only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings

from tests.support.proxy import (
    METRICS_TOKEN,
    STARTUP_SECONDS,
    Stack,
    StackClient,
    _stack_database,
)
from tests.support.smtp import SMTPServer, free_port

WEB_MASTERS = 2
WORKERS = 2
GUNICORN_WORKERS_EACH = 1


class ScaleOut(Stack):
    """``Stack``'s database, commands and logs, with several web masters and workers."""

    def __init__(self, folder: Path, database_url: str, redis_url: str,
                 smtp: SMTPServer) -> None:
        super().__init__(folder, database_url, redis_url, smtp)
        self.web_ports = [free_port() for _ in range(WEB_MASTERS)]
        self.env["PORTAL_BASE_URL"] = self.web_url(0)
        self.LOGS = {**{f"web {n} error": f"web-{n}.err" for n in range(WEB_MASTERS)},
                     **{f"worker {n}": f"worker-{n}.log" for n in range(WORKERS)}}

    def web_url(self, web: int) -> str:
        return f"http://127.0.0.1:{self.web_ports[web]}"

    def on(self, client: StackClient, web: int) -> StackClient:
        """Point ``client`` (and its cookies: one browser) at web master ``web``."""
        client.base_url = client.origin = self.web_url(web)
        return client

    def client_of(self, web: int, source: str) -> StackClient:
        return StackClient(self.web_url(web), source, origin=self.web_url(web))

    def scrape(self, web: int) -> str:
        response = self.client_of(web, "127.0.0.1").get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text[:300]
        return response.text

    def start(self) -> None:
        migrated = self.portal("migrate", "--no-input")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        portal = [sys.executable, "-m", "portal.cli"]
        for n, port in enumerate(self.web_ports):
            self._start(f"web {n}", [*portal, "serve", "--bind", f"127.0.0.1:{port}",
                                     "--workers", str(GUNICORN_WORKERS_EACH)],
                        f"web-{n}.out", f"web-{n}.err")
        for n in range(WORKERS):
            self._start(f"worker {n}", [*portal, "worker", "--poll-interval", "0.5"],
                        f"worker-{n}.log")
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            self._check_running()
            if all(self._answers(n) for n in range(WEB_MASTERS)) and all(
                    any("started" in line for line in self.log_lines()[f"worker {n}"])
                    for n in range(WORKERS)):
                return
            time.sleep(0.2)
        raise AssertionError("the scale-out stack did not come up:\n" + self.describe())

    def _answers(self, web: int) -> bool:
        try:
            with self.client_of(web, "127.0.0.1") as probe:
                return probe.get("/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture(scope="module")
def scale_out(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory,
              redis_url: str, smtp_server: SMTPServer, worker_id: str) -> Iterator[ScaleOut]:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("runs in the PostgreSQL pass of `make test`")
    database_url, drop = _stack_database(
        "_scale" if worker_id == "master" else f"_scale_{worker_id}")
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()  # the test Redis database (TEST_REDIS_URL), never a real one
    finally:
        client.close()
    stack = ScaleOut(tmp_path_factory.mktemp("scale"), database_url, redis_url, smtp_server)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        drop()
