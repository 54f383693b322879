"""Queueing mail: validated before a row is written, stored in the caller's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from portal.mail.errors import InvalidRecipient, MailError
from portal.mail.models import OutboundMessage
from portal.mail.outbox import enqueue, requeue
from portal.mail.worker import deliver_due

pytestmark = pytest.mark.django_db


def test_enqueue_stores_the_message_without_talking_smtp(smtp):
    message = enqueue(to="Alice@Northwind.example", subject="Hello", text="Hi there.")
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.QUEUED
    assert message.to == "alice@northwind.example"
    assert message.text_body == "Hi there."
    assert smtp.messages == []


def test_enqueue_gives_each_message_a_message_id_on_our_domain(settings):
    settings.DEFAULT_FROM_EMAIL = "Cloud Sentry <noreply@cloudsentry.com>"
    first = enqueue(to="a@northwind.example", subject="x", text="x")
    second = enqueue(to="a@northwind.example", subject="x", text="x")
    assert first.message_id.startswith("<") and first.message_id.endswith("@cloudsentry.com>")
    assert first.message_id != second.message_id


@pytest.mark.parametrize("address", [
    "alice@northwind.example\r\nBcc: victim@example.com",
    "alice@northwind.example\nBcc: victim@example.com",
    "alice\r@northwind.example",
])
def test_recipient_with_a_line_break_is_refused_before_queueing(address):
    with pytest.raises(InvalidRecipient) as caught:
        enqueue(to=address, subject="x", text="x")
    assert "line breaks" in str(caught.value)
    assert isinstance(caught.value, MailError)
    assert not OutboundMessage.objects.exists()


def test_recipient_longer_than_254_characters_is_refused_before_queueing():
    address = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".example"
    assert len(address) > 254
    with pytest.raises(InvalidRecipient) as caught:
        enqueue(to=address, subject="x", text="x")
    assert "254" in str(caught.value)
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize("address", ["", "not an address", "alice@", "@northwind.example"])
def test_malformed_recipient_is_refused_with_a_sentence(address):
    with pytest.raises(InvalidRecipient) as caught:
        enqueue(to=address, subject="x", text="x")
    assert caught.value.reason.endswith(".")
    assert not OutboundMessage.objects.exists()


def test_rolled_back_transaction_queues_nothing(smtp):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        enqueue(to="alice@northwind.example", subject="Hello", text="Hi")
        raise Boom
    assert not OutboundMessage.objects.exists()
    assert deliver_due() == 0
    assert smtp.messages == []


def test_subject_line_breaks_are_flattened_so_no_header_can_be_added():
    message = enqueue(to="alice@northwind.example", subject="Hello\r\nBcc: victim@example.com",
                      text="x")
    assert message.subject == "Hello Bcc: victim@example.com"


def test_overlong_subject_is_shortened_to_fit():
    message = enqueue(to="alice@northwind.example", subject="word " * 100, text="x")
    assert len(message.subject) == 300
    assert message.subject.endswith("…")


def test_a_message_needs_content_or_a_renderer():
    with pytest.raises(ValueError, match="body"):
        enqueue(to="alice@northwind.example", subject="x")


def test_requeue_puts_failed_and_expired_messages_back_and_skips_the_rest():
    failed = enqueue(to="a@northwind.example", subject="a", text="a")
    expired = enqueue(to="b@northwind.example", subject="b", text="b")
    sent = enqueue(to="c@northwind.example", subject="c", text="c")
    OutboundMessage.objects.filter(pk=failed.pk).update(
        status="failed", attempt_count=8, last_error="550 no")
    OutboundMessage.objects.filter(pk=expired.pk).update(status="expired",
                                                          not_after=failed.created_at)
    OutboundMessage.objects.filter(pk=sent.pk).update(status="sent")
    assert requeue(OutboundMessage.objects.all()) == 2
    failed.refresh_from_db()
    expired.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.status, failed.attempt_count, failed.last_error) == ("queued", 0, "")
    assert (expired.status, expired.not_after) == ("queued", None)
    assert sent.status == "sent"
