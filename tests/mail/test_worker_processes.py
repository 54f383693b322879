"""Several `portal worker` processes against one PostgreSQL database and a real SMTP server.

These run only in the PostgreSQL pass: the processes need committed rows in a database
they can reach (``transactional_db``), and SKIP LOCKED is what is being tested.
"""

from __future__ import annotations

import collections
import signal
from typing import Any

import pytest

from portal.core.clock import now
from portal.mail.models import DeliveryAttempt, OutboundMessage
from portal.mail.outbox import enqueue
from tests.support.workers import wait_until

pytestmark = [pytest.mark.postgres]
Status = OutboundMessage.Status


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
    # The attempt row follows the `sent` commit (docs/mail-delivery.md, "Record").
    wait_until(lambda: message.attempts.filter(result="sent").exists(),
               what="the attempt to be recorded")
    message.refresh_from_db()
    results = list(message.attempts.values_list("result", flat=True))
    assert results == ["transient", "sent"]
