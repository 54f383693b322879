from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.servicedesk import services
from portal.servicedesk.models import ServiceRequest
from tests.factories import make_user
from tests.passkeys.support import passkey_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam():
    return make_user("sam@cloudsentry.com", staff=True, superuser=True, full_name="Sam Patel")


@pytest.fixture
def staff_client(sam) -> Client:
    return passkey_client(sam)


def change_post(sr: ServiceRequest, **extra: str) -> dict[str, str]:
    return {"title": sr.title, "description": sr.description, "status": sr.status,
            "priority": sr.priority, "reply": "", "comments-TOTAL_FORMS": "0",
            "comments-INITIAL_FORMS": "0", "comments-MIN_NUM_FORMS": "0",
            "comments-MAX_NUM_FORMS": "1000", "attachments-TOTAL_FORMS": "0",
            "attachments-INITIAL_FORMS": "0", "attachments-MIN_NUM_FORMS": "0",
            "attachments-MAX_NUM_FORMS": "1000", **extra}


def test_staff_change_the_status_and_reply_as_staff(staff_client, sam, alice):
    sr = services.file_request(alice, title="VPN drops", description="Every ten minutes.")
    url = reverse("admin:servicedesk_servicerequest_change", args=[sr.pk])
    response = staff_client.post(url, change_post(sr, status="waiting",
                                                  reply="Which VPN client version?"))
    assert response.status_code == 302, response.content.decode()[:3000]
    sr.refresh_from_db()
    assert sr.status == ServiceRequest.Status.WAITING
    reply = sr.comments.get()
    assert (reply.body, reply.author, reply.from_staff) == ("Which VPN client version?", sam,
                                                           True)


def test_the_customer_sees_the_staff_reply(staff_client, alice, alice_client):
    sr = services.file_request(alice, title="VPN drops", description="Every ten minutes.")
    url = reverse("admin:servicedesk_servicerequest_change", args=[sr.pk])
    staff_client.post(url, change_post(sr, reply="We are on it."))
    page = alice_client.get(sr.get_absolute_url()).content.decode()
    assert "We are on it." in page and "service desk" in page


def test_admin_shows_the_conversation_read_only(staff_client, alice):
    sr = services.file_request(alice, title="VPN drops", description="Every ten minutes.")
    services.add_comment(alice, sr, "Customer words")
    page = staff_client.get(reverse("admin:servicedesk_servicerequest_change",
                                    args=[sr.pk])).content.decode()
    assert "Customer words" in page
    assert 'name="comments-0-body"' not in page


def test_a_request_cannot_be_moved_to_another_organization(staff_client, alice, contoso):
    sr = services.file_request(alice, title="VPN drops", description="Every ten minutes.")
    url = reverse("admin:servicedesk_servicerequest_change", args=[sr.pk])
    staff_client.post(url, change_post(sr, organization=str(contoso.pk)))
    sr.refresh_from_db()
    assert sr.organization.name == "Northwind Logistics"


def test_staff_file_a_request_for_a_customer_with_the_next_number(staff_client, sam, alice,
                                                                 northwind):
    services.file_request(alice, title="First", description="d")
    response = staff_client.post(reverse("admin:servicedesk_servicerequest_add"), {
        "organization": str(northwind.pk), "title": "Called in by phone",
        "description": "Printer jam", "priority": "normal", "status": "in_progress",
        "reply": "Logged from your call.", "comments-TOTAL_FORMS": "0",
        "comments-INITIAL_FORMS": "0", "comments-MIN_NUM_FORMS": "0",
        "comments-MAX_NUM_FORMS": "1000"})
    assert response.status_code == 302, response.content.decode()[:3000]
    sr = ServiceRequest.objects.get(title="Called in by phone")
    assert (sr.number, sr.status, sr.created_by) == (1002, "in_progress", sam)
    assert sr.comments.get().from_staff


def test_request_list_in_admin_searches_by_number(staff_client, alice):
    services.file_request(alice, title="First", description="d")
    services.file_request(alice, title="Second", description="d")
    page = staff_client.get(reverse("admin:servicedesk_servicerequest_changelist")
                            + "?q=1002").content.decode()
    assert "Second" in page and ">First<" not in page


def test_request_search_with_words_does_not_break_the_number_search(staff_client, alice):
    services.file_request(alice, title="Printer offline", description="d")
    response = staff_client.get(reverse("admin:servicedesk_servicerequest_changelist")
                                + "?q=printer")
    assert response.status_code == 200
    assert "Printer offline" in response.content.decode()
