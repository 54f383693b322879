"""Benchmark: how fast do 1 and 2 `portal worker` processes drain the outbox?

Queues a batch of messages in PostgreSQL, lets N worker processes (separate processes,
``python -m portal.cli worker``) deliver them to a local aiosmtpd sink (loopback, accepts
everything, keeps nothing), and prints messages per second for 1 and 2 workers and their
ratio. Bounded: a few hundred messages, a time limit per run.

    python bench/outbox_throughput.py [--messages 400] [--kind signin|plain]
                                      [--database-url postgres://…/portal_bench]
                                      [--baseline-src DIR] [--json]

- ``--kind signin`` (the default) queues sign-in link emails, each with its sign-in request
  for an active member of a bench organization, exactly as the sign-in form queues them:
  the worker renders each at send time (eligibility, the secret minted, the audit rows).
  ``--kind plain`` queues fully written messages.
- ``--baseline-src DIR`` also runs the workers from another checkout's ``src`` folder
  (e.g. ``git archive main src | tar -x -C /tmp/base``, then ``--baseline-src
  /tmp/base/src``), in the same run, against the same database and sink, so old and new
  code are measured side by side. The queueing is done by this checkout's code.
- ``--json`` prints one JSON object instead of the table; its shape is stable:

      {"benchmark": "outbox_throughput", "unit": "messages/s", "kind": "signin",
       "messages": 400, "sink_received": 1600,
       "runs": {"current": {"1": 250.1, "2": 380.2, "ratio": 1.52},
                "baseline": {"1": 38.5, "2": 70.0, "ratio": 1.82}}}

  (``baseline`` only with ``--baseline-src``.) Without a reachable PostgreSQL it prints
  ``{"benchmark": "outbox_throughput", "skipped": "<why>"}`` (or a sentence) and exits 0.

The database is created if missing and migrated; its outbox, sign-in requests and audit
rows are emptied between runs, so point it at a scratch database. DKIM is off, as in the
numbers reported in docs/mail-delivery.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
TIME_LIMIT_SECONDS = 300.0
BENCH_DOMAIN = "bench.example"


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


def start_workers(count: int, env: dict[str, str], logs: Path,
                  label: str) -> list[subprocess.Popen[bytes]]:
    processes = []
    paths = [logs / f"worker-{label}-{count}-{n}.log" for n in range(count)]
    for path in paths:
        with path.open("wb") as log:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "portal.cli", "worker", "--poll-interval", "1"],
                env=env, stdout=log, stderr=subprocess.STDOUT))
    # Wait until every worker has started its loop, so start-up is not measured.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all("started" in path.read_text(errors="replace") for path in paths):
            return processes
        time.sleep(0.05)
    stop_workers(processes)
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


def bench_people(count: int) -> list[str]:
    """Return ``count`` addresses of active members of the bench organization (made once)."""
    from portal.accounts.models import Organization, User
    from portal.accounts.services import add_user, create_organization

    org = Organization.objects.filter(name="Bench").first() or create_organization(
        "Bench", [BENCH_DOMAIN])
    addresses = [f"person{n}@{BENCH_DOMAIN}" for n in range(count)]
    existing = set(User.objects.filter(email__in=addresses).values_list("email", flat=True))
    for address in addresses:
        if address not in existing:
            add_user(address, org)
    return addresses


def queue(kind: str, addresses: list[str]) -> None:
    """Queue one message per address in one transaction, as the portal would."""
    from django.db import transaction

    from portal.audit.services import record_event
    from portal.audit.tags import Tag
    from portal.core.clock import now
    from portal.mail.outbox import enqueue
    from portal.signin import tokens
    from portal.signin.flows.magic_link import MIN_LIFE_ON_SEND, RENDERER
    from portal.signin.models import SignInRequest

    with transaction.atomic():
        for n, address in enumerate(addresses):
            if kind == "plain":
                enqueue(to=address, subject=f"Bench {n}", text=f"Message {n}\n",
                        html=f"<p>Message {n}</p>")
                continue
            # What magic_link.request_link writes, without an HTTP request or rate limits.
            moment = now()
            expires_at = moment + timedelta(minutes=15)
            sign_in = SignInRequest.objects.create(
                email=address, created_at=moment, expires_at=expires_at,
                binding_hash=tokens.hash_binding(tokens.generate_binding()), next_url="/",
                ip="127.0.0.1", user_agent="bench", approval_number=tokens.generate_number())
            sign_in.message = enqueue(to=address, kind="signin_link", renderer=RENDERER,
                                      payload={"sign_in_request": sign_in.pk},
                                      not_after=expires_at - MIN_LIFE_ON_SEND)
            sign_in.save(update_fields=["message"])
            record_event(Tag.LINK_REQUESTED, email=address, ip="127.0.0.1", agent="bench",
                         sign_in_request=sign_in.pk)


def empty_tables() -> None:
    from portal.audit.models import AuthEvent
    from portal.mail.models import OutboundMessage
    from portal.signin.models import SignInRequest

    SignInRequest.objects.all().delete()
    OutboundMessage.objects.all().delete()
    AuthEvent.objects.all().delete()


def run(workers: int, kind: str, addresses: list[str], env: dict[str, str], logs: Path,
        label: str) -> float:
    from portal.mail.models import OutboundMessage

    empty_tables()
    processes = start_workers(workers, env, logs, label)
    try:
        queue(kind, addresses)
        started = time.monotonic()
        while time.monotonic() - started < TIME_LIMIT_SECONDS:
            if OutboundMessage.objects.filter(status="sent").count() >= len(addresses):
                break
            time.sleep(0.02)
        else:
            raise SystemExit(f"{workers} {label} worker(s) did not finish within "
                             f"{TIME_LIMIT_SECONDS} s; see their logs in {logs}")
        elapsed = time.monotonic() - started
    finally:
        stop_workers(processes)
    return len(addresses) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--kind", choices=["signin", "plain"], default="signin")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 DEFAULT_URL))
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR",
                        help="Also run the workers from this src folder (old code).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    messages = max(20, min(args.messages, 5000))
    if not reachable(args.database_url):
        reason = f"PostgreSQL at {args.database_url} is not reachable"
        print(json.dumps({"benchmark": "outbox_throughput", "skipped": reason}) if args.json
              else f"{reason}; skipped.")
        return 0
    if args.baseline_src is not None and not (args.baseline_src / "portal").is_dir():
        parser.error(f"--baseline-src {args.baseline_src} has no portal package")
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
    env.pop("REDIS_URL", None)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "PORTAL_DEBUG", "PORTAL_SECRET_KEY",
                                           "DJANGO_SETTINGS_MODULE",
                                           "PORTAL_ALLOW_INSECURE_HTTP")})
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    codes = {"current": env}
    if args.baseline_src is not None:
        codes["baseline"] = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
    results: dict[str, dict[str, float]] = {}
    try:
        addresses = (bench_people(messages) if args.kind == "signin"
                     else [f"person{n}@{BENCH_DOMAIN}" for n in range(messages)])
        for workers in (1, 2):
            # Old and new take turns, so both see the same machine load.
            for label, code_env in codes.items():
                rate = run(workers, args.kind, addresses, code_env, logs, label)
                results.setdefault(label, {})[str(workers)] = round(rate, 1)
        for rates in results.values():
            rates["ratio"] = round(rates["2"] / rates["1"], 2)
    finally:
        empty_tables()
        sink.stop()
    if args.json:
        print(json.dumps({"benchmark": "outbox_throughput", "unit": "messages/s",
                          "kind": args.kind, "messages": messages,
                          "sink_received": handler.count, "runs": results}))
        return 0
    print(f"messages per run: {messages} {args.kind} (sink received {handler.count})")
    for label, rates in results.items():
        print(f"{label:>8}  1 worker: {rates['1']:8.1f} messages/s   2 workers: "
              f"{rates['2']:8.1f} messages/s   ratio 2/1: {rates['ratio']:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
