"""The bench stack: the portal in its production shape, the ceiling and the peer, on loopback.

nginx (Debian's, a configuration of its own in a temporary folder) fronts three gunicorn
servers with the same settings (2 sync workers, access log on): ``portal serve``, the hello
project (bench/hello) and the peer (bench/peer, django-allauth). One ``portal worker``
delivers the portal's mail; the sink (bench/sink.py) takes every message, the worker's and
the peer's. PostgreSQL databases ``bench_portal`` and ``bench_peer`` are created here and
dropped by ``stop``; Redis is the database number given (the portal's rate limits and cache,
the peer's cache under its own prefix). The portal's sign-in limits are raised through the
SIGNIN_LIMIT_* variables, so the code is measured and not a limit.

Only names that start with ``bench_`` are ever created or dropped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
APP_PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_PYTHON = Path(sys.executable)
NGINX = "/usr/sbin/nginx"
GUNICORN_WORKERS = 2
PG = "postgres://postgres@127.0.0.1:5432"
RAISED = "1000000/15m"  # the most portal.core.rates accepts

NGINX_CONF = (Path(__file__).resolve().parent / "nginx.conf.template").read_text()
NGINX_SERVER = """\
    upstream {name} {{
        server 127.0.0.1:{upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        access_log {folder}/{name}-access.log portal;
        location / {{
            proxy_pass http://{name};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def admin_sql(statement: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(statement)


def create_database(name: str) -> str:
    assert name.startswith("bench_"), name
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def drop_database(name: str) -> None:
    assert name.startswith("bench_"), name
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack:
    """Everything ``make bench`` measures, started and stopped as one."""

    SYSTEMS = ("portal", "hello", "peer")

    def __init__(self, redis_url: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="portal-bench-stack-"))
        self.redis_url = redis_url
        self.ports = {name: free_port() for name in self.SYSTEMS}
        self.upstreams = {name: free_port() for name in self.SYSTEMS}
        self.smtp_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.portal_db = f"{PG}/bench_portal"
        self.peer_db = f"{PG}/bench_peer"
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("PORTAL_", "DATABASE_", "REDIS_", "SMTP_", "SIGNIN_",
                                     "DKIM_", "GOOGLE_", "MICROSOFT_", "DJANGO_"))}
        (self.folder / "var" / "static").mkdir(parents=True)
        self.portal_env = {
            **base, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "portal.config.settings", "PORTAL_DEBUG": "false",
            "PORTAL_SECRET_KEY": "bench-" + "s" * 50, "DATABASE_URL": self.portal_db,
            "REDIS_URL": redis_url, "PORTAL_BASE_URL": self.base("portal"),
            "PORTAL_ALLOW_INSECURE_HTTP": "true", "PORTAL_ALLOWED_HOSTS": "127.0.0.1",
            "PORTAL_VAR_DIR": str(self.folder / "var"), "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port), "SMTP_TLS": "none",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "SIGNIN_LIMIT_PER_ADDRESS": RAISED, "SIGNIN_LIMIT_PER_DEVICE": RAISED,
            "SIGNIN_LIMIT_PER_IP": RAISED, "SIGNIN_LIMIT_OVERALL": "1000000/m",
            "SIGNIN_CODE_LIMIT_PER_IP": RAISED}
        self.peer_env = {**base, "PYTHONUNBUFFERED": "1",
                         "DJANGO_SETTINGS_MODULE": "peer_settings",
                         "PYTHONPATH": str(ROOT / "bench" / "peer"),
                         "PEER_DATABASE_URL": self.peer_db, "PEER_REDIS_URL": redis_url,
                         "PEER_SMTP_PORT": str(self.smtp_port)}
        self.hello_env = {**base, "PYTHONUNBUFFERED": "1",
                          "DJANGO_SETTINGS_MODULE": "hello_project",
                          "PYTHONPATH": str(ROOT / "bench" / "hello")}

    def base(self, system: str) -> str:
        return f"http://127.0.0.1:{self.ports[system]}"

    def origin(self, system: str) -> str:
        """What a browser's Origin is: nginx stands for the TLS proxy of a deployment."""
        return f"https://127.0.0.1:{self.ports[system]}"

    # Commands ---------------------------------------------------------------------------
    def portal(self, *args: str, timeout: float = 900) -> str:
        done = subprocess.run([str(APP_PYTHON), *args], env=self.portal_env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def peer(self, *args: str, timeout: float = 900) -> str:
        done = subprocess.run([str(BENCH_PYTHON), str(ROOT / "bench/peer/manage.py"),
                               *args], env=self.peer_env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise SystemExit(f"peer {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def prepare(self, portal_users: int, peer_users: int) -> None:
        """Create and migrate both databases, and give each its people."""
        create_database("bench_portal")
        create_database("bench_peer")
        redis.Redis.from_url(self.redis_url).flushdb()  # the bench's own Redis database
        self.portal("-m", "portal.cli", "migrate", "--no-input")
        self.peer("migrate", "--no-input")
        self.portal("bench/seed_portal.py", "users", str(portal_users))
        self.peer("seed", str(peer_users))

    # Processes --------------------------------------------------------------------------
    def _start(self, name: str, argv: list[str], env: dict[str, str],
               cwd: Path = ROOT) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log,
                                                    stderr=subprocess.STDOUT,
                                                    start_new_session=True)

    def _gunicorn(self, system: str) -> list[str]:
        return ["--bind", f"127.0.0.1:{self.upstreams[system]}",
                "--workers", str(GUNICORN_WORKERS), "--access-logfile", "-"]

    def start(self) -> None:
        self._start("sink", [str(BENCH_PYTHON), "bench/sink.py", "--port", str(self.smtp_port),
                             "--redis-url", self.redis_url], self.peer_env)
        self._start("portal", [str(APP_PYTHON), "-m", "portal.cli", "serve",
                               "--bind", f"127.0.0.1:{self.upstreams['portal']}",
                               "--workers", str(GUNICORN_WORKERS)], self.portal_env)
        self._start("worker", [str(APP_PYTHON), "-m", "portal.cli", "worker"], self.portal_env)
        self._start("hello", [str(APP_PYTHON), "-m", "gunicorn", "hello_project:application",
                              *self._gunicorn("hello")], self.hello_env)
        self._start("peer", [str(BENCH_PYTHON), "-m", "gunicorn", "peer_wsgi:application",
                             *self._gunicorn("peer")], self.peer_env)
        servers = "".join(NGINX_SERVER.format(name=name, port=self.ports[name],
                                              upstream=self.upstreams[name],
                                              folder=self.folder) for name in self.SYSTEMS)
        conf = self.folder / "nginx.conf"
        conf.write_text(NGINX_CONF.format(folder=self.folder, servers=servers))
        self._start("nginx", [NGINX, "-c", str(conf), "-p", str(self.folder),
                              "-e", str(self.folder / "nginx-error.log")], os.environ.copy())
        self._wait_ready()

    def _wait_ready(self, seconds: float = 90.0) -> None:
        probes = {"portal": "/healthz", "hello": "/", "peer": "/accounts/login/code/"}
        deadline = time.monotonic() + seconds
        waiting = set(probes)
        while waiting and time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited:\n{self.tail(name)}")
            for name in list(waiting):
                try:
                    with urllib.request.urlopen(self.base(name) + probes[name],  # noqa: S310
                                                timeout=5) as response:
                        if response.status == 200:
                            waiting.discard(name)
                except OSError:
                    pass
            time.sleep(0.2)
        if waiting or "started" not in self.tail("worker"):
            raise SystemExit(f"the stack did not come up ({', '.join(waiting)}):\n"
                             + "\n".join(self.tail(name) for name in self.processes))

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.folder / f"{name}.log"
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return f"--- {name}\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        self.processes.clear()
        drop_database("bench_portal")
        drop_database("bench_peer")
