"""Benchmark: how fast do 1 and 2 `portal worker` processes drain the outbox?

Queues a batch of messages in PostgreSQL, lets N worker processes deliver them to a local
aiosmtpd sink (loopback, accepts everything, keeps nothing), and prints messages per second
for 1 and 2 workers and their ratio. Bounded: a few hundred messages, a time limit.

    python bench/outbox_throughput.py [--messages 400] [--database-url postgres://…/portal_bench]

The database is created if missing and migrated; its outbox table is emptied between runs,
so point it at a scratch database. Without a reachable PostgreSQL it says so and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
TIME_LIMIT_SECONDS = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 2.0.0 OK"


def start_workers(count: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    processes = []
    for n in range(count):
        with (logs / f"worker-{count}-{n}.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "portal.cli", "worker", "--poll-interval", "1"],
                env=env, stdout=log, stderr=subprocess.STDOUT))
    # Wait until every worker has started its loop, so start-up is not measured.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = sum("started" in (logs / f"worker-{count}-{n}.log").read_text(errors="replace")
                      for n in range(count))
        if started == count:
            return processes
        time.sleep(0.05)
    raise SystemExit("workers did not start within 60 s; see their logs in " + str(logs))


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def run(workers: int, messages: int, env: dict[str, str], logs: Path) -> float:
    from django.db import transaction

    from portal.mail.models import OutboundMessage
    from portal.mail.outbox import enqueue

    OutboundMessage.objects.all().delete()
    processes = start_workers(workers, env, logs)
    try:
        with transaction.atomic():
            for n in range(messages):
                enqueue(to=f"person{n}@bench.example", subject=f"Bench {n}",
                        text=f"Message {n}\n", html=f"<p>Message {n}</p>")
        started = time.monotonic()
        while time.monotonic() - started < TIME_LIMIT_SECONDS:
            if OutboundMessage.objects.filter(status="sent").count() >= messages:
                break
            time.sleep(0.02)
        else:
            raise SystemExit(f"{workers} worker(s) did not finish within {TIME_LIMIT_SECONDS} s")
        elapsed = time.monotonic() - started
    finally:
        stop_workers(processes)
    return messages / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 DEFAULT_URL))
    args = parser.parse_args()
    messages = max(20, min(args.messages, 5000))
    if not reachable(args.database_url):
        print(f"PostgreSQL at {args.database_url} is not reachable; skipped.")
        return 0
    ensure_database(args.database_url)

    from aiosmtpd.controller import Controller

    handler = CountingHandler()
    sink = Controller(handler, hostname="127.0.0.1", port=free_port())
    sink.start()
    logs = Path(tempfile.mkdtemp(prefix="portal-bench-outbox-"))
    env = {**os.environ, "DATABASE_URL": args.database_url, "PORTAL_DEBUG": "false",
           "PORTAL_SECRET_KEY": os.environ.get("PORTAL_SECRET_KEY", "bench-" + "x" * 40),
           "DJANGO_SETTINGS_MODULE": "portal.config.settings", "SMTP_HOST": "127.0.0.1",
           "PORTAL_ALLOW_INSECURE_HTTP": "true",  # no web server: nothing is served
           "SMTP_PORT": str(sink.port), "SMTP_TLS": "none", "SMTP_USERNAME": "",
           "DKIM_SELECTOR": "", "DKIM_PRIVATE_KEY_FILE": "", "PYTHONUNBUFFERED": "1"}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "PORTAL_DEBUG", "PORTAL_SECRET_KEY",
                                           "DJANGO_SETTINGS_MODULE",
                                           "PORTAL_ALLOW_INSECURE_HTTP")})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    try:
        one = run(1, messages, env, logs)
        two = run(2, messages, env, logs)
    finally:
        sink.stop()
    print(f"messages per run: {messages} (sink received {handler.count})")
    print(f"1 worker:  {one:8.1f} messages/s")
    print(f"2 workers: {two:8.1f} messages/s")
    print(f"ratio 2/1: {two / one:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
