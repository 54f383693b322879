from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from portal.audit.models import AuthEvent
from portal.audit.services import record_event
from portal.audit.tags import Tag
from tests.factories import make_org, make_user
from tests.passkeys.support import passkey_client

pytestmark = pytest.mark.django_db
BACKEND = "portal.accounts.backends.PasswordlessBackend"


@pytest.fixture
def superuser_client() -> Client:
    return passkey_client(make_user("sam@cloudsentry.com", staff=True, superuser=True))


@pytest.fixture
def event() -> AuthEvent:
    org = make_org("Northwind Logistics", ["northwind.example"])
    alice = make_user("alice@northwind.example", org)
    return record_event(Tag.LINK_REDEEMED, email=alice.email, user=alice, ip="203.0.113.7",
                        reason="ok")


def test_staff_can_read_the_audit_list(superuser_client, event):
    response = superuser_client.get(reverse("admin:audit_authevent_changelist"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "signin:link:redeemed" in page and "alice@northwind.example" in page
    assert "203.0.113.7" in page and "Northwind Logistics" in page


def test_audit_events_cannot_be_added_even_by_a_superuser(superuser_client):
    assert superuser_client.get(reverse("admin:audit_authevent_add")).status_code == 403
    assert superuser_client.post(reverse("admin:audit_authevent_add"),
                                 {"tag": "signin:link:redeemed"}).status_code == 403
    assert AuthEvent.objects.count() == 0


def test_audit_events_cannot_be_changed_even_by_a_superuser(superuser_client, event):
    url = reverse("admin:audit_authevent_change", args=[event.pk])
    page = superuser_client.get(url).content.decode()
    assert 'name="_save"' not in page
    assert 'name="email"' not in page
    response = superuser_client.post(url, {"email": "mallory@evil.example",
                                           "tag": event.tag, "outcome": "success"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.email == "alice@northwind.example"


def test_audit_events_cannot_be_deleted_even_by_a_superuser(superuser_client, event):
    url = reverse("admin:audit_authevent_delete", args=[event.pk])
    assert superuser_client.post(url, {"post": "yes"}).status_code == 403
    response = superuser_client.post(reverse("admin:audit_authevent_changelist"), {
        "action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert response.status_code in (200, 302)
    assert AuthEvent.objects.filter(pk=event.pk).exists()


def test_staff_with_every_audit_permission_still_cannot_change_events(event):
    helper = make_user("helper@cloudsentry.com", staff=True)
    helper.user_permissions.add(*Permission.objects.filter(content_type__app_label="audit"))
    client = passkey_client(helper)
    assert client.get(reverse("admin:audit_authevent_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_authevent_add")).status_code == 403
    url = reverse("admin:audit_authevent_delete", args=[event.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403


def test_audit_search_finds_by_email_and_by_ip(superuser_client, event):
    record_event(Tag.LINK_REQUESTED, email="bob@northwind.example", ip="198.51.100.9")
    url = reverse("admin:audit_authevent_changelist")
    by_email = superuser_client.get(url + "?q=alice").content.decode()
    by_ip = superuser_client.get(url + "?q=198.51.100").content.decode()
    assert "alice@northwind.example" in by_email and "bob@northwind.example" not in by_email
    assert "bob@northwind.example" in by_ip and "alice@northwind.example" not in by_ip


def test_audit_list_filters_by_tag_and_outcome(superuser_client, event):
    record_event(Tag.LINK_REUSED, email="bob@northwind.example")
    url = reverse("admin:audit_authevent_changelist")
    failures = superuser_client.get(url + "?outcome__exact=failure").content.decode()
    assert "bob@northwind.example" in failures and "alice@northwind.example" not in failures
    redeemed = superuser_client.get(url + "?tag__exact=signin:link:redeemed").content.decode()
    assert "alice@northwind.example" in redeemed and "bob@northwind.example" not in redeemed


def test_people_who_are_not_staff_cannot_read_the_audit(event):
    client = Client()
    client.force_login(event.user, backend=BACKEND)
    response = client.get(reverse("admin:audit_authevent_changelist"))
    assert response.status_code == 302
    assert "alice@northwind.example" not in response.content.decode()
