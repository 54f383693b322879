"""The production shape, for tests: nginx in front of `portal serve`, with `portal worker`.

Debian's nginx runs as a TLS-less reverse proxy (its configuration written into a
temporary folder; the portal-specific lines are the ones README.md shows) in front of
gunicorn (`portal serve`, two workers) and one `portal worker`, on PostgreSQL and Redis,
with the test SMTP server (``tests/support/smtp.py``) as the relay. One stack serves the
whole test session (``production_stack``); ``stack`` hands it to a test with its Redis
counters and received mail emptied.

The stack has a PostgreSQL database of its own (``<test database>_stack``, migrated by
`portal migrate`), not pytest-django's: its worker would otherwise deliver mail that other
tests queue, and its connections would stop pytest-django from dropping the test database.
Tests read it with ``Stack.sql`` and change it with ``Stack.portal`` (real `portal`
commands), so use addresses of your own (``Stack.unique``): rows stay for the session.

It runs in the PostgreSQL pass only; with ``CI=true`` a missing nginx fails the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from portal.config.settings import cookie_names
from tests.config.portal_cli import clean_env
from tests.support.smtp import SMTPServer, free_port

NGINX = "/usr/sbin/nginx"
STARTUP_SECONDS = 90.0
STOP_SECONDS = 20.0
GUNICORN_WORKERS = 2
# What the stack's monitoring system would send to read /metrics.
METRICS_TOKEN = "stack-metrics-" + "t" * 32

# The portal's part of an nginx `http {}` block. README.md ("Running in production")
# shows these lines as they are; tests/production/test_docs.py checks that it does.
NGINX_PORTAL_HTTP = """\
    # Sign-in, invitation and enrolment links carry their secret in the path: log it redacted,
    # never $request (the raw request line), which the default "combined" format logs.
    map $request_uri $portal_log_uri {
        "~^(?<portal_uri_head>.*?/(?:signin/link|organization/invitation|passkeys/enrol)/)[^/?]*(?<portal_uri_tail>.*)$" "${portal_uri_head}[redacted]${portal_uri_tail}";
        default $request_uri;
    }
    map $http_referer $portal_log_referer {
        "~^(?<portal_ref_head>.*?/(?:signin/link|organization/invitation|passkeys/enrol)/)[^/?]*(?<portal_ref_tail>.*)$" "${portal_ref_head}[redacted]${portal_ref_tail}";
        default $http_referer;
    }
    log_format portal '$remote_addr - $remote_user [$time_local] "$request_method $portal_log_uri $server_protocol" $status $body_bytes_sent "$portal_log_referer" "$http_user_agent" $request_time';
"""
# The portal's `location`s inside the `server {}` that clients reach.
NGINX_PORTAL_LOCATION = """\
        # /metrics is for the monitoring system, which reads it from `portal serve` on the
        # private network: the public side does not pass it on, token or not.
        location = /metrics {
            return 404;
        }
        location / {
            proxy_pass http://portal;
            proxy_set_header Host $http_host;
            # Appends the address nginx saw; the portal believes it because nginx's own
            # address is in FORWARDED_ALLOW_IPS.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            # Room for a request or comment with its attachments (ATTACHMENT_MAX_FILES x
            # ATTACHMENT_MAX_BYTES, 5 x 10 MB by default); nginx refuses more with 413.
            client_max_body_size 60m;
        }
"""

_NGINX_TEST_CONF = """\
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
events {{
    worker_connections 512;
}}
http {{
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{portal_http}
    upstream portal {{
        server 127.0.0.1:{upstream_port};
    }}
    server {{
        listen 127.0.0.1:{port};
        access_log {folder}/access.log portal;
{portal_location}
    }}
}}
"""


def nginx_config(folder: Path, port: int, upstream_port: int) -> str:
    """Return the test nginx configuration: everything it writes stays in ``folder``."""
    return _NGINX_TEST_CONF.format(folder=folder, port=port, upstream_port=upstream_port,
                                   portal_http=NGINX_PORTAL_HTTP.rstrip("\n"),
                                   portal_location=NGINX_PORTAL_LOCATION.rstrip("\n"))


class _BoundAdapter(HTTPAdapter):
    """Open every connection from one loopback source address (127.0.0.X)."""

    def __init__(self, source: str) -> None:
        self.source = source  # read by init_poolmanager, which HTTPAdapter calls
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        pool_kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


# The stack runs in production mode over (proxied) HTTPS: its cookies carry their prefixes.
SESSION_COOKIE, CSRF_COOKIE = cookie_names(secure=True)[:2]


class StackClient(requests.Session):
    """A browser-like HTTP client bound to a loopback source address.

    Paths are relative to ``base_url``; redirects are not followed (tests look at them).
    The portal, told by nginx that the request came over HTTPS, sets ``Secure`` cookies;
    this client plays a browser that spoke HTTPS to a TLS proxy in front of nginx, so it
    sends them back over the plain-HTTP hop. Which cookies were ``Secure`` is kept in
    ``secure_cookies``.
    """

    def __init__(self, base_url: str, source: str, origin: str) -> None:
        super().__init__()
        self.trust_env = False  # no HTTP(S)_PROXY from the environment: loopback only
        self.base_url, self.source, self.origin = base_url, source, origin
        self.secure_cookies: set[str] = set()
        adapter = _BoundAdapter(source)
        self.mount("http://", adapter)
        self.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        if isinstance(url, str) and url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)  # Session.get would default to True
        return self.request("GET", url, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        for cookie in self.cookies:
            if cookie.secure:
                self.secure_cookies.add(cookie.name)
                cookie.secure = False
        return response

    def form(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        """POST a form as a browser does: with the CSRF token and the page's Origin."""
        if CSRF_COOKIE not in self.cookies:
            self.get(path)
        headers = {"Origin": self.origin, **kwargs.pop("headers", {})}
        return self.post(path, data={"csrfmiddlewaretoken": self.cookies[CSRF_COOKIE], **data},
                         headers=headers, **kwargs)


class Stack:
    """The running stack: its addresses, clients, database, logs and `portal` commands."""

    def __init__(self, folder: Path, database_url: str, redis_url: str,
                 smtp: SMTPServer) -> None:
        self.folder = folder
        self.database_url = database_url
        self.redis_url = redis_url
        self.smtp = smtp
        self.port = free_port()
        self.gunicorn_port = free_port()
        (folder / "var" / "static").mkdir(parents=True)
        self.env = clean_env(
            DJANGO_SETTINGS_MODULE="portal.config.settings",
            PORTAL_DEBUG="false", PORTAL_SECRET_KEY="stack-" + "s" * 50,
            DATABASE_URL=database_url, REDIS_URL=redis_url,
            # Plain HTTP on loopback stands for the TLS proxy a real deployment has.
            PORTAL_BASE_URL=self.base_url, PORTAL_ALLOW_INSECURE_HTTP="true",
            PORTAL_ALLOWED_HOSTS="127.0.0.1", PORTAL_VAR_DIR=str(folder / "var"),
            SMTP_HOST=smtp.host, SMTP_PORT=str(smtp.port), SMTP_TLS="none",
            FORWARDED_ALLOW_IPS="127.0.0.1", METRICS_TOKEN=METRICS_TOKEN,
            PYTHONUNBUFFERED="1")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def base_url(self) -> str:
        """The address clients use: nginx."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def gunicorn_url(self) -> str:
        """gunicorn itself, for tests of what a client that bypasses nginx can do."""
        return f"http://127.0.0.1:{self.gunicorn_port}"

    def client(self, source: str = "127.0.0.1") -> StackClient:
        """A client talking to nginx from ``source``; the portal sees HTTPS."""
        return StackClient(self.base_url, source, origin=f"https://127.0.0.1:{self.port}")

    def direct_client(self, source: str) -> StackClient:
        """A client talking to gunicorn directly, bypassing nginx; the portal sees HTTP."""
        return StackClient(self.gunicorn_url, source, origin=self.gunicorn_url)

    @staticmethod
    def unique(name: str = "stack") -> str:
        """Return a name no other test (or earlier run) used: the database outlives tests."""
        return f"{name}-{uuid.uuid4().hex[:10]}"

    def sql(self, query: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query on the stack's database and return its rows."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def portal(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `portal ARGS` against the stack's database and settings."""
        return subprocess.run([sys.executable, "-m", "portal.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    # Logs -------------------------------------------------------------------------------
    LOGS = {"nginx access": "access.log", "nginx error": "error.log",
            "gunicorn access": "gunicorn.out", "gunicorn error": "gunicorn.err",
            "worker": "worker.log"}

    def log_lines(self) -> dict[str, list[str]]:
        """Return every line each process has logged so far, by process."""
        lines = {}
        for name, file in self.LOGS.items():
            path = self.folder / file
            lines[name] = path.read_text(errors="replace").splitlines() if path.exists() else []
        return lines

    def wait_for_log(self, name: str, contains: str, timeout: float = 30.0) -> str:
        """Wait (bounded) until a line of log ``name`` contains ``contains``; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines()[name]:
                if contains in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no line of the {name} log contains {contains!r}:\n"
                             + "\n".join(self.log_lines()[name][-20:]))

    # Processes --------------------------------------------------------------------------
    def _start(self, name: str, argv: list[str], out: str, err: str | None = None) -> None:
        with (self.folder / out).open("ab") as stdout:
            stderr = (self.folder / err).open("ab") if err else subprocess.STDOUT
            try:
                self.processes[name] = subprocess.Popen(argv, env=self.env, stdout=stdout,
                                                        stderr=stderr, start_new_session=True)
            finally:
                if err:
                    stderr.close()

    def start(self) -> None:
        migrated = self.portal("migrate", "--no-input")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        portal = [sys.executable, "-m", "portal.cli"]
        self._start("gunicorn", [*portal, "serve", "--bind", f"127.0.0.1:{self.gunicorn_port}",
                                 "--workers", str(GUNICORN_WORKERS)],
                    "gunicorn.out", "gunicorn.err")
        self._start("worker", [*portal, "worker", "--poll-interval", "0.5"], "worker.log")
        conf = self.folder / "nginx.conf"
        conf.write_text(nginx_config(self.folder, self.port, self.gunicorn_port))
        self._start("nginx", [NGINX, "-c", str(conf), "-p", str(self.folder),
                              "-e", str(self.folder / "error.log")], "nginx.out")
        self._wait_ready()

    def _wait_ready(self) -> None:
        probe = self.client()
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            while time.monotonic() < deadline:
                self._check_running()
                try:
                    if (probe.get("/healthz", timeout=5).status_code == 200
                            and any("started" in line for line in self.log_lines()["worker"])):
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.2)
        finally:
            probe.close()
        raise AssertionError("the stack did not come up:\n" + self.describe())

    def _check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n"
                                     + self.describe())

    def describe(self) -> str:
        """Return the tail of every log, for a failure message."""
        return "\n".join(f"--- {name}\n" + "\n".join(lines[-30:])
                         for name, lines in self.log_lines().items())

    def stop(self) -> None:
        # SIGTERM first (nginx: fast shutdown; gunicorn and the worker: graceful), then kill.
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_SECONDS)


def _stack_database(name_suffix: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database beside the test database; return its URL and a dropper."""
    server = settings.DATABASES["default"]  # pytest-django's: NAME is test_<name>
    name = f"{server['NAME']}_stack{name_suffix}"
    user, host, port = server.get("USER") or "postgres", server.get("HOST") or "127.0.0.1", (
        server.get("PORT") or 5432)
    admin = f"postgres://{user}@{host}:{port}/postgres"

    def run(statement: str) -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(statement)

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run(f'CREATE DATABASE "{name}"')
    return (f"postgres://{user}@{host}:{port}/{name}",
            lambda: run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def production_stack(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory,
                     redis_url: str, smtp_server: SMTPServer, worker_id: str) -> Iterator[Stack]:
    """nginx → `portal serve` (2 gunicorn workers) + `portal worker`, once per session."""
    from tests.conftest import require

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("runs in the PostgreSQL pass of `make test`")
    require(f"Debian's nginx ({NGINX}; apt-get install nginx)", Path(NGINX).exists())
    database_url, drop = _stack_database("" if worker_id == "master" else f"_{worker_id}")
    stack = Stack(tmp_path_factory.mktemp("stack"), database_url, redis_url, smtp_server)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        drop()


@pytest.fixture
def stack(production_stack: Stack, smtp: SMTPServer) -> Stack:
    """The session's stack, with its Redis counters (rate limits, cache) and received mail
    emptied. Its database keeps its rows: tests use addresses of their own (``unique``).
    """
    client = redis.Redis.from_url(production_stack.redis_url)
    try:
        client.flushdb()  # the test Redis database (TEST_REDIS_URL), never a real one
    finally:
        client.close()
    return production_stack
