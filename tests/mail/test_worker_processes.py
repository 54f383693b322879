"""Several `portal worker` processes against one PostgreSQL database and a real SMTP server.

These run only in the PostgreSQL pass: the processes need committed rows in a database
they can reach (``transactional_db``), and SKIP LOCKED is what is being tested.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from portal.core.clock import now
from portal.mail.models import DeliveryAttempt, OutboundMessage
from portal.mail.outbox import enqueue
from tests.support.smtp import SMTPServer

pytestmark = [pytest.mark.postgres]
Status = OutboundMessage.Status


def wait_until(condition: Callable[[], bool], timeout: float = 30.0,
               what: str = "condition", tick: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if tick is not None:
            tick()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Workers:
    """Start and stop `portal worker` processes pointed at the test database and server."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1, *args: str) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            with (self.logs / f"worker-{len(self.processes)}.log").open("wb") as log:
                process = subprocess.Popen([sys.executable, "-m", "portal.cli", "worker", *args],
                                           env=self.env, stdout=log, stderr=subprocess.STDOUT)
            self.processes.append(process)
            started.append(process)
        return started

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise

    def stop_all(self) -> list[int]:
        return [self.stop(process) for process in self.processes]

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def workers(on_postgres: None, transactional_db: None, smtp: SMTPServer,
            tmp_path: Path) -> Iterator[Workers]:
    db = connection.settings_dict
    env = {**os.environ,
           # The test database pytest-django created (test_<name>), not the configured one.
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "DJANGO_SETTINGS_MODULE": "portal.config.settings",
           "PORTAL_DEBUG": "false", "PORTAL_SECRET_KEY": "worker-test-" + "k" * 40,
           "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
           "SMTP_USERNAME": "", "SMTP_TIMEOUT_SECONDS": "10",
           "DKIM_SELECTOR": "", "DKIM_PRIVATE_KEY_FILE": "", "PYTHONUNBUFFERED": "1"}
    running = Workers(env, tmp_path)
    try:
        yield running
    finally:
        # Stop every process before pytest-django empties the tables under them.
        for process in running.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def queue(count: int, start: int = 0) -> list[OutboundMessage]:
    return [enqueue(to=f"person{n}@northwind.example", subject=f"Message {n}",
                    text=f"Body {n}") for n in range(start, start + count)]


def count(*statuses: str) -> int:
    return OutboundMessage.objects.filter(status__in=statuses).count()


def test_several_workers_deliver_each_message_exactly_once_across_an_outage(workers, smtp):
    queue(150)
    workers.start(3, "--poll-interval", "0.2")
    wait_until(lambda: count(Status.SENT) == 150, what="the first 150 to be sent")

    # The relay goes away; mail keeps coming and is queued for retry, not lost.
    smtp.stop(drain=0.3)
    queue(150, start=150)
    wait_until(lambda: count(Status.QUEUED, Status.SENDING) == 0,
               what="every new message to be tried once")
    assert count(Status.RETRYING) == 150
    assert count(Status.FAILED) == 0

    smtp.start()

    def nudge() -> None:  # stand-in for the backoff running out
        OutboundMessage.objects.filter(status=Status.RETRYING).update(next_attempt_at=now())

    wait_until(lambda: count(Status.SENT) == 300, what="all 300 to be sent", tick=nudge)
    assert workers.stop_all() == [0, 0, 0], workers.output()

    delivered = collections.Counter(m.message["Message-ID"] for m in smtp.messages)
    expected = set(OutboundMessage.objects.values_list("message_id", flat=True))
    assert len(expected) == 300
    assert set(delivered) == expected
    assert max(delivered.values()) == 1, [k for k, v in delivered.items() if v > 1]
    assert DeliveryAttempt.objects.filter(result="sent").count() == 300
    # The work was shared: more than one worker sent mail.
    assert DeliveryAttempt.objects.values("worker").distinct().count() > 1


def test_sigterm_lets_the_current_message_finish_then_exits(workers, smtp):
    smtp.handler.delay = 1.0  # a slow relay: the worker is mid-send when told to stop
    [message] = queue(1)
    [process] = workers.start(1, "--poll-interval", "0.2")
    wait_until(lambda: count(Status.SENDING) == 1, what="the worker to start sending")
    process.send_signal(signal.SIGTERM)
    # Wait, not stop(): a second SIGTERM means "exit at once" by design.
    assert process.wait(timeout=20) == 0, workers.output()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert len(smtp.messages) == 1


def test_new_mail_wakes_an_idle_worker_without_waiting_for_the_poll(workers, smtp):
    queue(1)
    workers.start(1, "--poll-interval", "60")
    smtp.wait_for(1, timeout=20)
    # The worker now sleeps up to a minute; only NOTIFY can wake it within the wait below.
    queue(1, start=1)
    smtp.wait_for(2, timeout=20)
    assert workers.stop_all() == [0]


def test_a_killed_worker_leaves_its_message_to_be_retried(workers, smtp, settings: Any):
    smtp.handler.delay = 3.0
    [message] = queue(1)
    [first] = workers.start(1, "--poll-interval", "0.2")
    wait_until(lambda: count(Status.SENDING) == 1, what="the first worker to claim")
    first.kill()  # no chance to finish or record anything
    first.wait(timeout=10)
    smtp.handler.delay = 0.0
    # The lease runs out (moved here rather than waited for); another worker takes over.
    OutboundMessage.objects.filter(pk=message.pk).update(claimed_until=now())
    workers.start(1, "--poll-interval", "0.2")
    wait_until(lambda: count(Status.SENT) == 1, what="the message to be sent")
    message.refresh_from_db()
    results = list(message.attempts.values_list("result", flat=True))
    assert results == ["transient", "sent"]
