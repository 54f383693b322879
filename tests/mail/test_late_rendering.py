"""Messages rendered at send time (sign-in links): hooks, cancellation, no stored secret."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.audit.models import AuthEvent
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.mail.models import OutboundMessage
from portal.mail.outbox import enqueue
from portal.mail.renderers import Cancel
from portal.mail.worker import deliver_due

pytestmark = pytest.mark.django_db


def queue_late(**overrides):
    fields = {"to": "alice@northwind.example", "kind": "test", "renderer": "test.recording",
              "payload": {"n": 7}}
    fields.update(overrides)
    return enqueue(**fields)


def test_rendered_message_is_sent_and_delivered_hook_runs(smtp, renderer):
    message = queue_late()
    deliver_due()
    parsed = smtp.wait_for(1)[0].message
    assert "https://portal.example/signin/link/secret-7/" in parsed.get_body(("plain",)).get_content()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert renderer.hooks() == ["render", "delivered"]
    # The hook sees the Message-ID that went out (the sign-in audit records it).
    assert renderer.calls[1][2] == message.message_id == parsed["Message-ID"]


def test_rendered_subject_is_kept_but_the_bodies_holding_the_secret_are_not(smtp, renderer):
    message = queue_late()
    deliver_due()
    message.refresh_from_db()
    assert message.subject == "Your sign-in link"
    assert message.text_body == "" and message.html_body == ""
    assert "secret-7" not in repr(OutboundMessage.objects.filter(pk=message.pk).values().get())


def test_cancel_sends_nothing_and_marks_the_message_cancelled(smtp, renderer):
    renderer.outcome = Cancel("unknown_address")
    message = queue_late()
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.CANCELLED
    assert "unknown_address" in message.last_error
    assert smtp.messages == []
    assert renderer.hooks() == ["render"]
    assert not message.attempts.exists()


def test_cancel_as_expired_marks_the_message_expired(smtp, renderer):
    renderer.outcome = Cancel("expired", expired=True)
    message = queue_late()
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.EXPIRED
    assert smtp.messages == []


def test_writes_a_renderer_makes_before_cancelling_are_kept(smtp, renderer):
    renderer.outcome = Cancel("unknown_address")
    renderer.on_render = lambda message: record_event(
        Tag.LINK_DECLINED, email=message.to, reason="unknown_address")
    queue_late()
    deliver_due()
    assert AuthEvent.objects.filter(tag=Tag.LINK_DECLINED.value).count() == 1


def test_renderer_error_rolls_back_its_writes_and_is_retried(smtp, renderer):
    renderer.outcome = RuntimeError("template missing")
    renderer.on_render = lambda message: record_event(
        Tag.LINK_SENT, email=message.to)
    message = queue_late()
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.RETRYING
    assert "template missing" in message.last_error
    assert not AuthEvent.objects.exists()
    assert smtp.messages == []


def test_late_message_past_its_deadline_is_expired_without_rendering(smtp, renderer):
    message = queue_late(not_after=now() - timedelta(seconds=1))
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.EXPIRED
    assert renderer.hooks() == ["expired"]  # told, so it can record why; never rendered
    assert smtp.messages == []


def test_failed_hook_runs_once_when_the_worker_gives_up(smtp, renderer):
    smtp.handler.reply_code = "554 5.7.1 Rejected"
    message = queue_late()
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED
    assert renderer.hooks() == ["render", "failed"]
    assert renderer.calls[1][2] == "554 5.7.1 Rejected"


def test_transient_failure_renders_afresh_on_the_next_attempt(smtp, renderer):
    smtp.handler.reply_code = "451 4.3.0 Later"
    message = queue_late()
    deliver_due()
    smtp.handler.reply_code = None
    OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=now())
    deliver_due()
    assert renderer.hooks() == ["render", "render", "delivered"]


def test_unknown_renderer_is_retried_not_lost(smtp):
    # A newer web release may queue a kind this older worker does not know yet.
    message = enqueue(to="alice@northwind.example", renderer="not.registered")
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.RETRYING
    assert "not.registered" in message.last_error


def test_a_failing_delivered_hook_does_not_undo_the_sent_status(smtp, renderer):
    def broken(message):
        raise RuntimeError("audit table locked")

    renderer.delivered = broken
    message = queue_late()
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=now())
    assert deliver_due() == 0
    assert len(smtp.messages) == 1
