"""Staff see delivery in the admin: status, attempts, the sign-in request, and a retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from portal.core.clock import now
from portal.mail.models import DeliveryAttempt, OutboundMessage
from portal.mail.outbox import enqueue
from portal.signin.models import SignInRequest
from tests.factories import make_org, make_user
from tests.passkeys.support import passkey_client

pytestmark = pytest.mark.django_db
BACKEND = "portal.accounts.backends.PasswordlessBackend"
CHANGELIST = "admin:mail_outboundmessage_changelist"


@pytest.fixture
def staff_client() -> Client:
    return passkey_client(make_user("ops@cloudsentry.com", staff=True, superuser=True))


def failed_message(to: str = "alice@northwind.example") -> OutboundMessage:
    message = enqueue(to=to, subject="Your request was answered", text="x")
    DeliveryAttempt.objects.create(message=message, result="permanent", smtp_code=550,
                                   reply="550 5.1.1 No such user", worker="host:1:abc")
    OutboundMessage.objects.filter(pk=message.pk).update(
        status="failed", attempt_count=1, last_error="550 5.1.1 No such user")
    message.refresh_from_db()
    return message


def test_changelist_filters_by_status(staff_client):
    failed_message("bounced@northwind.example")
    enqueue(to="waiting@northwind.example", subject="Queued one", text="x")
    page = staff_client.get(reverse(CHANGELIST), {"status__exact": "failed"})
    assert page.status_code == 200
    assert b"bounced@northwind.example" in page.content
    assert b"waiting@northwind.example" not in page.content


def test_changelist_searches_by_recipient(staff_client):
    enqueue(to="alice@northwind.example", subject="a", text="x")
    enqueue(to="bob@contoso.example", subject="b", text="x")
    page = staff_client.get(reverse(CHANGELIST), {"q": "contoso"})
    assert b"bob@contoso.example" in page.content
    assert b"alice@northwind.example" not in page.content


def test_change_page_shows_attempts_last_error_and_is_read_only(staff_client):
    message = failed_message()
    page = staff_client.get(reverse("admin:mail_outboundmessage_change", args=[message.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "550 5.1.1 No such user" in body
    assert "host:1:abc" in body  # the attempt inline
    assert 'name="to"' not in body  # nothing to edit


def test_change_page_links_the_sign_in_request(staff_client):
    message = enqueue(to="alice@northwind.example", renderer="signin.link", kind="signin_link")
    sign_in = SignInRequest.objects.create(
        email="alice@northwind.example", expires_at=now() + timedelta(minutes=15),
        binding_hash="0" * 64, message=message)
    page = staff_client.get(reverse("admin:mail_outboundmessage_change", args=[message.pk]))
    assert reverse("admin:signin_signinrequest_change", args=[sign_in.pk]) in page.content.decode()


def test_staff_cannot_add_or_delete_messages(staff_client):
    message = failed_message()
    assert staff_client.get(reverse("admin:mail_outboundmessage_add")).status_code == 403
    assert staff_client.get(reverse("admin:mail_outboundmessage_delete",
                                    args=[message.pk])).status_code == 403


def test_retry_action_queues_failed_messages_and_skips_sent_ones(staff_client):
    failed = failed_message()
    sent = enqueue(to="bob@northwind.example", subject="s", text="x")
    OutboundMessage.objects.filter(pk=sent.pk).update(status="sent")
    page = staff_client.post(reverse(CHANGELIST), {
        "action": "retry_now", "_selected_action": [failed.pk, sent.pk]}, follow=True)
    assert page.status_code == 200
    assert b"1 message queued again" in page.content
    assert b"1 skipped" in page.content
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert failed.status == "queued" and failed.next_attempt_at <= now()
    assert failed.attempts.count() == 1  # history is kept
    assert sent.status == "sent"


def test_customers_cannot_see_the_outbox():
    org = make_org()
    client = Client()
    client.force_login(make_user("alice@northwind.example", org, admin=True), backend=BACKEND)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 302
    assert "/admin/login/" in page["Location"]
