from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.servicedesk import services
from portal.servicedesk.models import Comment, ServiceRequest
from tests.factories import make_user
from tests.servicedesk.conftest import BACKEND

pytestmark = pytest.mark.django_db


def file(user, title="Printer offline", description="It shows offline.", **kw):
    return services.file_request(user, title=title, description=description, **kw)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


def set_status(sr: ServiceRequest, status: str) -> None:
    ServiceRequest.objects.filter(pk=sr.pk).update(status=status)


# --- signed out -------------------------------------------------------------------------

@pytest.mark.parametrize("name,args", [("home", []), ("servicedesk:list", []),
                                       ("servicedesk:new", []), ("servicedesk:detail", [1001])])
def test_service_desk_pages_send_signed_out_people_to_sign_in(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:start"))


# --- home -------------------------------------------------------------------------------

def test_home_shows_the_organization_and_its_open_requests_first(alice, alice_client):
    closed = file(alice, title="Old closed thing")
    set_status(closed, ServiceRequest.Status.CLOSED)
    file(alice, title="Printer offline")
    response = alice_client.get(reverse("home"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Northwind Logistics" in page
    assert page.index("Printer offline") < page.index("Old closed thing")
    assert reverse("servicedesk:new") in page and "File a new request" in page
    assert reverse("helpcenter:article", args=["signing-in-with-a-magic-link"]) in page


def test_home_for_staff_without_an_organization_points_to_the_admin(db):
    sam = make_user("sam@cloudsentry.com", staff=True)
    response = client_for(sam).get(reverse("home"))
    assert response.status_code == 200
    assert "staff admin" in response.content.decode()
    assert reverse("admin:index") in response.content.decode()


def test_home_for_someone_without_an_organization_is_a_plain_page(db):
    loner = make_user("lone@nowhere.example")
    response = client_for(loner).get(reverse("home"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "not part of an organization" in page
    assert reverse("admin:index") not in page


# --- list -------------------------------------------------------------------------------

def test_list_shows_open_requests_by_default_and_closed_on_request(alice, alice_client):
    file(alice, title="Still open")
    done = file(alice, title="All done")
    set_status(done, ServiceRequest.Status.RESOLVED)
    open_page = alice_client.get(reverse("servicedesk:list")).content.decode()
    closed_page = alice_client.get(reverse("servicedesk:list") + "?status=closed").content.decode()
    all_page = alice_client.get(reverse("servicedesk:list") + "?status=all").content.decode()
    assert "Still open" in open_page and "All done" not in open_page
    assert "All done" in closed_page and "Still open" not in closed_page
    assert "All done" in all_page and "Still open" in all_page


def test_list_with_an_unknown_filter_shows_open_requests(alice, alice_client):
    file(alice, title="Still open")
    response = alice_client.get(reverse("servicedesk:list") + "?status=<script>")
    assert response.status_code == 200
    assert "Still open" in response.content.decode()
    assert "<script>" not in response.content.decode()


def test_list_never_shows_another_organizations_requests(alice_client, contoso):
    file(make_user("dan@contoso.example", contoso), title="Contoso secret plans")
    page = alice_client.get(reverse("servicedesk:list") + "?status=all").content.decode()
    assert "Contoso secret plans" not in page


# --- detail -----------------------------------------------------------------------------

def test_detail_shows_status_priority_description_and_comments_in_order(alice, alice_client):
    sr = file(alice, description="Dock 3 printer is offline.",
              priority=ServiceRequest.Priority.HIGH)
    services.add_comment(alice, sr, "First comment")
    services.reply_as_staff(make_user("sam@cloudsentry.com", staff=True), sr, "Second, from us")
    response = alice_client.get(reverse("servicedesk:detail", args=[sr.number]))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'class="badge badge-new"' in page and "High" in page
    assert "Dock 3 printer is offline." in page
    assert page.index("First comment") < page.index("Second, from us")
    assert "comment-staff" in page
    assert f'action="{reverse("servicedesk:comment", args=[sr.number])}"' in page


def test_another_organizations_request_is_not_found(alice_client, contoso):
    theirs = file(make_user("dan@contoso.example", contoso), title="Contoso secret plans")
    response = alice_client.get(reverse("servicedesk:detail", args=[theirs.number]))
    assert response.status_code == 404
    assert "Contoso secret plans" not in response.content.decode()


def test_same_number_in_two_organizations_shows_each_their_own(alice, alice_client, contoso):
    file(make_user("dan@contoso.example", contoso), title="Contoso secret plans")
    mine = file(alice, title="Northwind printer")
    assert mine.number == 1001
    page = alice_client.get(reverse("servicedesk:detail", args=[1001])).content.decode()
    assert "Northwind printer" in page and "Contoso secret plans" not in page


def test_unknown_request_number_is_not_found(alice_client):
    assert alice_client.get(reverse("servicedesk:detail", args=[999999])).status_code == 404


def test_user_input_is_escaped_on_the_detail_page(alice, alice_client):
    sr = file(alice, title="<script>alert(1)</script>", description="<img src=x onerror=1>")
    page = alice_client.get(sr.get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- new --------------------------------------------------------------------------------

def test_filing_a_request_redirects_to_it(alice, alice_client):
    response = alice_client.post(reverse("servicedesk:new"), {
        "title": "  VPN drops  ", "description": "Every ten minutes.", "priority": "high"})
    sr = ServiceRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("servicedesk:detail", args=[sr.number])
    assert (sr.title, sr.priority, sr.created_by, sr.organization.name) == (
        "VPN drops", "high", alice, "Northwind Logistics")
    follow = alice_client.get(response["Location"]).content.decode()
    assert "SR-1001 is filed" in follow


def test_filing_without_a_title_is_refused_with_a_message_and_keeps_the_text(alice_client):
    response = alice_client.post(reverse("servicedesk:new"), {
        "title": "   ", "description": "My careful description", "priority": "normal"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Give the request a short title." in page
    assert "My careful description" in page
    assert ServiceRequest.objects.count() == 0


def test_a_title_that_is_too_long_is_refused_with_its_length(alice_client):
    response = alice_client.post(reverse("servicedesk:new"), {
        "title": "x" * 201, "description": "d", "priority": "normal"})
    assert response.status_code == 400
    assert "200 characters or fewer (it has 201)" in response.content.decode()


def test_an_unknown_priority_is_refused(alice_client):
    response = alice_client.post(reverse("servicedesk:new"), {
        "title": "t", "description": "d", "priority": "apocalyptic"})
    assert response.status_code == 400
    assert "Choose one of the priorities in the list." in response.content.decode()


def test_filing_needs_an_organization(db):
    sam = make_user("sam@cloudsentry.com", staff=True)
    response = client_for(sam).post(reverse("servicedesk:new"), {
        "title": "t", "description": "d", "priority": "normal"})
    assert response.status_code == 403
    assert ServiceRequest.objects.count() == 0


def test_filing_without_a_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice, backend=BACKEND)
    response = client.post(reverse("servicedesk:new"), {
        "title": "t", "description": "d", "priority": "normal"})
    assert response.status_code == 403
    assert ServiceRequest.objects.count() == 0


# --- comment ----------------------------------------------------------------------------

def test_adding_a_comment_shows_it_on_the_request(alice, alice_client):
    sr = file(alice)
    response = alice_client.post(reverse("servicedesk:comment", args=[sr.number]),
                                 {"body": "Restarted it, still offline."})
    assert response.status_code == 302
    assert response["Location"] == sr.get_absolute_url() + "#comments"
    assert Comment.objects.get().body == "Restarted it, still offline."


def test_an_empty_comment_is_refused_with_a_message(alice, alice_client):
    sr = file(alice)
    response = alice_client.post(reverse("servicedesk:comment", args=[sr.number]),
                                 {"body": "  "})
    assert response.status_code == 400
    assert "Write a comment before sending it." in response.content.decode()
    assert Comment.objects.count() == 0


def test_commenting_on_another_organizations_request_is_not_found(alice_client, contoso):
    theirs = file(make_user("dan@contoso.example", contoso))
    response = alice_client.post(reverse("servicedesk:comment", args=[theirs.number]),
                                 {"body": "hello"})
    assert response.status_code == 404
    assert Comment.objects.count() == 0


def test_commenting_on_a_closed_request_is_refused_with_a_way_forward(alice, alice_client):
    sr = file(alice)
    set_status(sr, ServiceRequest.Status.CLOSED)
    response = alice_client.post(reverse("servicedesk:comment", args=[sr.number]),
                                 {"body": "hello"})
    assert response.status_code == 409
    assert "File a new request and mention SR-1001" in response.content.decode()
    assert Comment.objects.count() == 0


def test_comment_url_only_accepts_posts(alice, alice_client):
    sr = file(alice)
    assert alice_client.get(reverse("servicedesk:comment", args=[sr.number])).status_code == 405
