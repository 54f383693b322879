"""Delivery through a real SMTP server (aiosmtpd): the message, retries, failures, leases."""

from __future__ import annotations

import email.utils
from datetime import timedelta

import dkim
import pytest

from portal.core.clock import now
from portal.mail import worker
from portal.mail.models import DeliveryAttempt, OutboundMessage
from portal.mail.outbox import enqueue
from portal.mail.worker import backoff, claim_next, deliver_due

pytestmark = pytest.mark.django_db
LINK = "https://portal.example/requests/42/?tab=comments&x=1"


def queue_one(**overrides):
    fields = {"to": "alice@northwind.example", "subject": "Your request was answered",
              "text": f"Read the answer: {LINK}\n",
              "html": f'<p>Read the answer: <a href="{LINK.replace("&", "&amp;")}">request 42</a></p>'}
    fields.update(overrides)
    return enqueue(**fields)


def make_due(message: OutboundMessage) -> None:
    """Move a scheduled retry to now (instead of waiting out the backoff)."""
    OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=now())


def test_message_reaches_the_smtp_server_with_honest_headers(smtp, settings):
    settings.DEFAULT_FROM_EMAIL = "Cloud Sentry <noreply@cloudsentry.com>"
    message = queue_one()
    assert deliver_due() == 1

    [received] = smtp.wait_for(1)
    assert received.mail_from == "noreply@cloudsentry.com"
    assert received.rcpt_tos == ["alice@northwind.example"]
    parsed = received.message
    assert parsed["From"] == "Cloud Sentry <noreply@cloudsentry.com>"
    assert parsed["To"] == "alice@northwind.example"
    assert parsed["Subject"] == "Your request was answered"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert email.utils.parsedate_to_datetime(parsed["Date"]).tzinfo is not None
    message.refresh_from_db()
    assert parsed["Message-ID"] == message.message_id
    assert message.message_id.endswith("@cloudsentry.com>")
    assert message.status == OutboundMessage.Status.SENT
    assert message.sent_at is not None
    assert message.attempt_count == 1
    [attempt] = message.attempts.all()
    assert (attempt.result, attempt.smtp_code) == ("sent", 250)
    assert "OK queued" in attempt.reply


def test_message_has_plain_text_and_html_alternatives_with_links_untouched(smtp):
    queue_one()
    deliver_due()
    parsed = smtp.wait_for(1)[0].message
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    # No link rewriting, no click tracking: the reader gets the link exactly as written.
    assert LINK in text
    assert LINK.replace("&", "&amp;") in html
    # No tracking pixel or any other image is added.
    assert "<img" not in html.lower()


def test_text_only_message_gets_an_html_alternative_with_the_text_escaped(smtp):
    queue_one(text="Hello <b>there</b>\n\nVisit https://portal.example/help/", html="")
    deliver_due()
    parsed = smtp.wait_for(1)[0].message
    html = parsed.get_body(("html",)).get_content()
    assert "&lt;b&gt;there&lt;/b&gt;" in html
    assert 'href="https://portal.example/help/"' in html
    assert parsed.get_body(("plain",)).get_content().startswith("Hello <b>there</b>")


def test_html_only_message_gets_a_plain_text_alternative(smtp):
    queue_one(text="", html="<p>Hello <strong>Alice</strong></p>")
    deliver_due()
    parsed = smtp.wait_for(1)[0].message
    assert parsed.get_body(("plain",)).get_content().strip() == "Hello Alice"


def test_non_ascii_subject_and_body_arrive_intact(smtp):
    queue_one(subject="Ihre Anfrage: Rückmeldung", text="Grüße aus Zürich ✓", html="")
    deliver_due()
    parsed = smtp.wait_for(1)[0].message
    assert parsed["Subject"] == "Ihre Anfrage: Rückmeldung"
    assert parsed.get_body(("plain",)).get_content().strip() == "Grüße aus Zürich ✓"


def test_dkim_signature_verifies_against_the_published_key(smtp, dkim_key):
    queue_one()
    deliver_due()
    received = smtp.wait_for(1)[0]
    assert received.raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(received.raw, dnsfunc=dkim_key.dnsfunc)
    signature = received.message["DKIM-Signature"]
    assert "d=cloudsentry.com" in signature and "s=portal2026" in signature


def test_dkim_signature_fails_when_the_message_is_altered(smtp, dkim_key):
    queue_one()
    deliver_due()
    raw = smtp.wait_for(1)[0].raw
    tampered = raw.replace(b"Read the answer", b"Read the forgery")
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=dkim_key.dnsfunc)


def test_without_dkim_settings_nothing_is_signed(smtp, settings):
    settings.DKIM_SELECTOR = ""
    settings.DKIM_PRIVATE_KEY_FILE = ""
    queue_one()
    deliver_due()
    assert "DKIM-Signature" not in smtp.wait_for(1)[0].message


def test_4xx_reply_is_retried_later_and_delivered_once_the_server_accepts(smtp):
    message = queue_one()
    smtp.handler.reply_code = "451 4.3.0 Try again later"
    assert deliver_due() == 1
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.RETRYING
    assert message.last_error == "451 4.3.0 Try again later"
    assert message.next_attempt_at > now()
    # Not due yet: another pass leaves it alone.
    assert deliver_due() == 0

    smtp.handler.reply_code = None
    make_due(message)
    assert deliver_due() == 1
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert len(smtp.wait_for(1)) == 1
    attempts = list(message.attempts.values_list("result", "smtp_code"))
    assert attempts == [("transient", 451), ("sent", 250)]


def test_server_down_is_retried_and_delivered_when_it_is_back(smtp):
    message = queue_one()
    smtp.stop()
    try:
        assert deliver_due() == 1
        message.refresh_from_db()
        assert message.status == OutboundMessage.Status.RETRYING
        assert "Connection" in message.last_error or "refused" in message.last_error.lower()
        attempt = message.attempts.get()
        assert attempt.result == "transient" and attempt.smtp_code is None
    finally:
        smtp.start()
    make_due(message)
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert len(smtp.wait_for(1)) == 1


def test_retry_becomes_due_when_the_backoff_has_passed(smtp, time_machine):
    time_machine.move_to(now(), tick=False)
    message = queue_one()
    smtp.handler.reply_code = "421 4.7.0 Too busy"
    deliver_due()
    message.refresh_from_db()
    smtp.handler.reply_code = None
    time_machine.shift(timedelta(seconds=20))
    assert deliver_due() == 0  # within the first backoff (30 s minus jitter at most 24 s)
    time_machine.shift(timedelta(seconds=20))
    assert deliver_due() == 1
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT


def test_5xx_reply_fails_the_message_with_the_reply_recorded(smtp):
    message = queue_one()
    smtp.handler.reply_code = "550 5.1.1 No such user here"
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED
    assert message.last_error == "550 5.1.1 No such user here"
    attempt = message.attempts.get()
    assert (attempt.result, attempt.smtp_code) == ("permanent", 550)
    make_due(message)
    assert deliver_due() == 0  # failed messages are not picked up again


def test_gives_up_after_the_maximum_number_of_attempts(smtp):
    message = queue_one()
    OutboundMessage.objects.filter(pk=message.pk).update(max_attempts=3)
    smtp.handler.reply_code = "452 4.2.2 Mailbox full"
    for _ in range(3):
        make_due(message)
        deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED
    assert message.attempt_count == 3
    assert message.attempts.count() == 3
    make_due(message)
    assert deliver_due() == 0


def test_backoff_doubles_with_jitter_and_is_capped_at_an_hour():
    for attempts, base in [(1, 30), (2, 60), (3, 120), (6, 960)]:
        for _ in range(20):
            seconds = backoff(attempts).total_seconds()
            assert base * 0.8 <= seconds <= base * 1.2
    assert backoff(30).total_seconds() <= 3600 * 1.2
    assert len({backoff(3) for _ in range(20)}) > 1  # jittered, not lock-step


def test_message_past_its_deadline_is_expired_not_sent(smtp):
    message = queue_one(not_after=now() - timedelta(seconds=1))
    assert deliver_due() == 1
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.EXPIRED
    assert "deadline" in message.last_error
    assert smtp.messages == []
    assert not message.attempts.exists()


def test_message_just_before_its_deadline_is_sent(smtp, time_machine):
    moment = now()
    time_machine.move_to(moment, tick=False)
    message = queue_one(not_after=moment + timedelta(seconds=1))
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT


def test_message_exactly_at_its_deadline_is_expired(smtp, time_machine):
    moment = now()
    time_machine.move_to(moment, tick=False)
    message = queue_one(not_after=moment)
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.EXPIRED


def test_message_left_sending_by_a_dead_worker_is_picked_up_again(smtp):
    message = queue_one()
    OutboundMessage.objects.filter(pk=message.pk).update(
        status="sending", claimed_by="host-a:4242:dead", claimed_until=now() - timedelta(seconds=1))
    assert deliver_due() == 1
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert len(smtp.wait_for(1)) == 1
    interrupted, sent = message.attempts.all()
    assert interrupted.result == "transient"
    assert "host-a:4242:dead stopped before finishing" in interrupted.reply
    assert sent.result == "sent"
    assert message.attempt_count == 2


def test_message_claimed_by_a_live_worker_is_left_alone(smtp):
    message = queue_one()
    OutboundMessage.objects.filter(pk=message.pk).update(
        status="sending", claimed_by="host-b:1:live", claimed_until=now() + timedelta(minutes=2))
    assert deliver_due() == 0
    assert smtp.messages == []


def test_worker_that_lost_its_claim_does_not_send(smtp, time_machine):
    time_machine.move_to(now(), tick=False)
    message = queue_one()
    claim = claim_next("me")
    assert claim is not None
    # Our lease ran out (a stalled render, a paused VM) and another worker took over.
    OutboundMessage.objects.filter(pk=message.pk).update(claimed_by="someone-else")
    time_machine.shift(worker.lease())
    assert worker.process(claim, "me", worker.Sender()) == "sending"
    assert smtp.messages == []


@pytest.mark.parametrize("reply", [None, "451 4.3.0 Try again later"])
def test_worker_that_lost_its_claim_mid_send_leaves_the_row_to_the_new_holder(smtp, reply):
    # A paused machine, a skewed clock: another worker took the row while this one talked
    # to the relay. Releasing it now (sent, or retrying) would let a third worker send it
    # while the holder is sending too.
    smtp.handler.reply_code = reply
    message = queue_one()
    claim = claim_next("me")
    assert claim is not None
    OutboundMessage.objects.filter(pk=message.pk).update(claimed_by="someone-else")
    sender = worker.Sender()
    try:
        assert worker.process(claim, "me", sender) == "sending"
    finally:
        sender.close()
    message.refresh_from_db()
    assert (message.status, message.claimed_by) == ("sending", "someone-else")
    assert message.sent_at is None and message.attempt_count == 0
    # What happened is on record all the same.
    [attempt] = message.attempts.all()
    assert (attempt.worker, attempt.result) == ("me", "sent" if reply is None else "transient")


def test_relay_slow_at_every_step_is_cut_off_at_the_conversation_timeout(smtp, settings):
    # Each reply comes within the timeout, the whole conversation does not. The worker's
    # claim is sized to the timeout (MAIL_CLAIM_LEASE_SECONDS), so a conversation allowed to
    # run on would outlive it, and a second worker would send the same message meanwhile.
    settings.EMAIL_TIMEOUT = 1
    smtp.handler.delays = {"MAIL": 0.6, "RCPT": 0.6}
    message = queue_one()
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.RETRYING
    assert "took longer than 1 s (SMTP_TIMEOUT_SECONDS)" in message.last_error
    assert smtp.messages == []
    smtp.handler.delays = {}
    make_due(message)
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert len(smtp.wait_for(1)) == 1


def test_claim_lease_is_declared_and_outlasts_the_conversation_timeout():
    from django.conf import settings

    assert max(120, 4 * settings.EMAIL_TIMEOUT) <= settings.MAIL_CLAIM_LEASE_SECONDS
    assert worker.lease().total_seconds() == settings.MAIL_CLAIM_LEASE_SECONDS


def test_interrupted_attempts_count_towards_giving_up(smtp):
    message = queue_one()
    OutboundMessage.objects.filter(pk=message.pk).update(
        status="sending", claimed_by="crashy", claimed_until=now() - timedelta(seconds=1),
        attempt_count=7, max_attempts=8)
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED
    assert smtp.messages == []


def test_claim_takes_the_oldest_due_message_and_stamps_a_lease():
    first = queue_one()
    queue_one()
    claim = claim_next("worker-1")
    assert claim is not None and claim.message.pk == first.pk
    first.refresh_from_db()
    assert first.status == "sending" and first.claimed_by == "worker-1"
    assert first.claimed_until is not None and first.claimed_until > now()


def test_one_connection_carries_many_messages(smtp):
    for n in range(5):
        queue_one(subject=f"Message {n}")
    assert deliver_due() == 5
    assert sorted(m.message["Subject"] for m in smtp.wait_for(5)) == [
        f"Message {n}" for n in range(5)]


def test_deliver_due_respects_its_limit(smtp):
    for _ in range(3):
        queue_one()
    assert deliver_due(limit=2) == 2
    assert OutboundMessage.objects.filter(status="queued").count() == 1


def test_password_is_never_sent_over_an_unencrypted_connection_to_another_host(settings):
    # A documentation address (TEST-NET-1): the check must refuse before connecting.
    settings.EMAIL_HOST = "192.0.2.10"
    settings.EMAIL_HOST_USER = "portal"
    settings.EMAIL_HOST_PASSWORD = "hunter2"
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    message = queue_one()
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.RETRYING
    assert "unencrypted" in message.last_error


def test_every_attempt_records_its_worker_and_times(smtp):
    message = queue_one()
    deliver_due()
    attempt = DeliveryAttempt.objects.get(message=message)
    assert attempt.worker
    assert attempt.finished_at is not None and attempt.finished_at >= attempt.started_at
