"""A worker that keeps up: queries per message, batches, one SMTP connection for many.

Query counts are asserted (never timings). ``django_assert_max_num_queries`` counts every
statement the database sees, transaction control included (``BEGIN``/``COMMIT``, or
``SAVEPOINT``/``RELEASE`` inside the test's transaction).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.mail import smtp as smtp_module
from portal.mail import worker
from portal.mail.models import OutboundMessage
from portal.mail.outbox import enqueue
from portal.mail.worker import BATCH_SIZE, claim_batch, deliver, deliver_due
from portal.signin.models import SignInRequest
from tests.factories import make_org, make_user
from tests.signin.magic import LINK, ask, text_of
from tests.support.smtp import SMTPServer, free_port

pytestmark = pytest.mark.django_db
Status = OutboundMessage.Status

# One sign-in email alone: the claim (1 statement), the render (the request locked, the
# person looked up, the secret stored: 3, in a transaction: +2), the 250 recorded (1, on
# its own), the attempt row, the request marked sent and the audit row (3, in a
# transaction: +2). Every one of them is a guarantee (docs/mail-delivery.md); SQLite's
# claim is a read and a guarded update in a transaction (+3).
ALONE = {"postgresql": 12, "sqlite": 15}
# A full batch: the same fixed part once, plus the one UPDATE that records each 250, plus
# the claim that finds nothing more: 32 for 20 emails (37 on SQLite), under 2 per email.
FULL_BATCH = {"postgresql": 12 + BATCH_SIZE, "sqlite": 15 + 2 + BATCH_SIZE}


def ask_for_links(count: int) -> list[SignInRequest]:
    org = make_org()
    for n in range(count):
        make_user(f"person{n}@northwind.example", org)
        ask(Client(), f"person{n}@northwind.example")
    return list(SignInRequest.objects.order_by("pk"))


def vendor() -> str:
    from django.db import connection

    return connection.vendor


def test_one_sign_in_email_costs_a_fixed_number_of_queries(
        smtp: SMTPServer, django_assert_max_num_queries: Any) -> None:
    [sign_in] = ask_for_links(1)
    worker.prepare()  # once per process, as `portal worker` does before its first claim
    with django_assert_max_num_queries(ALONE[vendor()]):
        assert deliver_due() == 1
    [received] = smtp.wait_for(1)
    assert LINK.search(text_of(received))
    sign_in.refresh_from_db()
    assert sign_in.delivery == SignInRequest.Delivery.SENT and sign_in.token_hash
    assert AuthEvent.objects.filter(tag=Tag.LINK_SENT.value).count() == 1


def test_a_full_batch_costs_fewer_queries_per_message(
        smtp: SMTPServer, django_assert_max_num_queries: Any) -> None:
    ask_for_links(BATCH_SIZE)
    worker.prepare()
    assert FULL_BATCH[vendor()] < 2 * BATCH_SIZE
    with django_assert_max_num_queries(FULL_BATCH[vendor()]):
        assert deliver_due() == BATCH_SIZE
    received = smtp.wait_for(BATCH_SIZE)
    # Each person got their own link: one secret per request, none shared in the batch.
    assert len({LINK.search(text_of(r)).group(1) for r in received}) == BATCH_SIZE  # type: ignore[union-attr]
    assert set(SignInRequest.objects.values_list("delivery", flat=True)) == {"sent"}
    assert AuthEvent.objects.filter(tag=Tag.LINK_SENT.value).count() == BATCH_SIZE
    assert not OutboundMessage.objects.exclude(status=Status.SENT).exists()


def test_a_batch_keeps_each_emails_own_checks(smtp: SMTPServer) -> None:
    # In one batch: a person who may sign in, a disabled one, and a request replaced by a
    # newer one (only the newest email of an address is sent, rule 4).
    org = make_org()
    make_user("ann@northwind.example", org)
    make_user("dan@northwind.example", org, active=False)
    ask(Client(), "ann@northwind.example")
    ask(Client(), "dan@northwind.example")
    ask(Client(), "ann@northwind.example")  # replaces the first (another browser)
    assert deliver_due() == 3
    [received] = smtp.wait_for(1)
    assert received.rcpt_tos == ["ann@northwind.example"]
    first, dan, newest = SignInRequest.objects.order_by("pk")
    assert (first.message.status, dan.message.status, newest.message.status) == (  # type: ignore[union-attr]
        Status.CANCELLED, Status.CANCELLED, Status.SENT)
    assert first.token_hash == "" and dan.token_hash == ""
    dan.refresh_from_db()
    assert dan.delivery == SignInRequest.Delivery.DECLINED
    # The refusal is on record once, not once per look at the batch.
    assert AuthEvent.objects.filter(tag=Tag.LINK_DECLINED.value).count() == 1


def test_an_expired_link_in_a_batch_is_not_sent(smtp: SMTPServer, time_machine: Any) -> None:
    [sign_in] = ask_for_links(1)
    # Its link would have less than a minute of life left on arrival (rule 5).
    time_machine.move_to(sign_in.expires_at - timedelta(seconds=30), tick=False)
    ask(Client(), "ann@example.org")  # a second message, so the batch has two
    assert deliver_due() == 2
    sign_in.message.refresh_from_db()  # type: ignore[union-attr]
    assert sign_in.message.status == Status.EXPIRED  # type: ignore[union-attr]
    assert smtp.messages == []


def test_each_sent_is_recorded_right_after_its_own_250(smtp: SMTPServer,
                                                       monkeypatch: Any) -> None:
    # While the third message is with the relay, the first two are already `sent`: a
    # worker dying mid-batch cannot send them again.
    for n in range(3):
        enqueue(to=f"p{n}@example.org", subject=f"Message {n}", text="Hello\n")
    statuses: list[list[str]] = []
    real_send = smtp_module.Sender.send

    def send(self: Any, composed: Any) -> Any:
        statuses.append(list(OutboundMessage.objects.order_by("pk")
                             .values_list("status", flat=True)))
        return real_send(self, composed)

    monkeypatch.setattr(smtp_module.Sender, "send", send)
    assert deliver_due() == 3
    assert statuses == [["sending"] * 3, ["sent", "sending", "sending"],
                        ["sent", "sent", "sending"]]


def test_a_stopping_worker_gives_back_the_claims_it_did_not_start(smtp: SMTPServer) -> None:
    fresh = enqueue(to="p1@example.org", subject="New", text="Hello\n")
    taken_over = enqueue(to="p2@example.org", subject="Old", text="Hello\n")
    OutboundMessage.objects.filter(pk=taken_over.pk).update(
        status=Status.SENDING, claimed_by="host-a:1:dead", claimed_until=now() - timedelta(1))
    claims = claim_batch("me", 5)
    assert {claim.message.pk for claim in claims} == {fresh.pk, taken_over.pk}
    stop = threading.Event()
    stop.set()
    assert deliver("me", claims, smtp_module.Sender(), stop) == []
    fresh.refresh_from_db()
    taken_over.refresh_from_db()
    assert (fresh.status, fresh.claimed_by, fresh.claimed_until) == (Status.QUEUED, "", None)
    # Still due, and still in the dead worker's name: the next claim records its attempt.
    assert (taken_over.status, taken_over.claimed_by) == (Status.SENDING, "host-a:1:dead")
    assert taken_over.claimed_until is not None and taken_over.claimed_until <= now()
    assert smtp.messages == []
    assert deliver_due() == 2
    assert [a.result for a in taken_over.attempts.all()] == ["transient", "sent"]


def test_a_claim_takes_at_most_its_limit_oldest_first() -> None:
    messages = [enqueue(to=f"p{n}@example.org", subject="Hi", text="Hello\n")
                for n in range(5)]
    claims = claim_batch("me", 3)
    assert [claim.message.pk for claim in claims] == [m.pk for m in messages[:3]]
    assert all(claim.message.status == Status.SENDING and claim.message.claimed_by == "me"
               for claim in claims)
    assert OutboundMessage.objects.filter(status=Status.QUEUED).count() == 2
    # What is claimed is not claimed again.
    assert [claim.message.pk for claim in claim_batch("you", 5)] == [m.pk for m in messages[3:]]
    assert claim_batch("them", 5) == []


class Recorder:
    """An SMTP server handler that notes which connection carried which command."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, str]] = []

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append((session.peer[1], "RSET"))
        return "250 OK"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        self.commands.append((session.peer[1], "MAIL"))
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append((session.peer[1], "DATA"))
        return "250 2.0.0 OK"

    def connections(self) -> list[int]:
        return list(dict.fromkeys(port for port, _ in self.commands))


@pytest.fixture
def recorder(settings: Any) -> Iterator[Recorder]:
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        yield handler
    finally:
        controller.stop()


def test_one_connection_carries_the_batch_back_to_back(recorder: Recorder) -> None:
    """After a message's final 250 the next MAIL follows at once: no RSET round trip."""
    for n in range(3):
        enqueue(to=f"p{n}@example.org", subject="Hi", text="Hello\n")
    assert deliver_due() == 3
    assert len(recorder.connections()) == 1
    assert [command for _, command in recorder.commands] == [
        "MAIL", "DATA", "MAIL", "DATA", "MAIL", "DATA"]


def test_a_connection_that_idled_is_probed_with_rset_first(recorder: Recorder,
                                                           monkeypatch: Any) -> None:
    monkeypatch.setattr(smtp_module, "CHECK_AFTER_IDLE_SECONDS", 0.0)  # every gap is idle
    for n in range(3):
        enqueue(to=f"p{n}@example.org", subject="Hi", text="Hello\n")
    assert deliver_due() == 3
    assert len(recorder.connections()) == 1
    assert [command for _, command in recorder.commands] == [
        "MAIL", "DATA", "RSET", "MAIL", "DATA", "RSET", "MAIL", "DATA"]


def test_a_connection_carries_a_bounded_number_of_messages(recorder: Recorder,
                                                           monkeypatch: Any) -> None:
    monkeypatch.setattr(smtp_module, "MESSAGES_PER_CONNECTION", 2)
    for n in range(5):
        enqueue(to=f"p{n}@example.org", subject="Hi", text="Hello\n")
    assert deliver_due() == 5
    per_connection = [sum(1 for port, command in recorder.commands
                          if port == conn and command == "DATA")
                      for conn in recorder.connections()]
    assert per_connection == [2, 2, 1]


def test_a_dropped_connection_is_replaced_before_the_next_message(recorder: Recorder) -> None:
    sender = smtp_module.Sender()
    try:
        first = enqueue(to="p1@example.org", subject="Hi", text="Hello\n")
        assert deliver("me", claim_batch("me"), sender)[0][1] == Status.SENT
        # The relay (or a NAT box) dropped the idle connection without a word.
        assert sender._conn is not None and sender._conn.sock is not None
        sender._conn.sock.shutdown(socket.SHUT_RDWR)
        second = enqueue(to="p2@example.org", subject="Hi", text="Hello\n")
        assert deliver("me", claim_batch("me"), sender)[0][1] == Status.SENT
    finally:
        sender.close()
    assert len(recorder.connections()) == 2
    for message in (first, second):
        assert [a.result for a in message.attempts.all()] == ["sent"]
