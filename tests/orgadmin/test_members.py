"""Members: the list (ways in used, last sign-in, search, pages), turning accounts off and
on, the admin role and the last-admin rule, the emails people get, the audit rows."""

from __future__ import annotations

import html
import threading
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.accounts.models import Membership, Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.mail.models import OutboundMessage
from portal.orgadmin import members
from portal.orgadmin.errors import LastAdmin
from portal.signin.models import UserSession
from tests.factories import make_user
from tests.orgadmin.conftest import signed_in
from tests.signin.magic import request_as
from tests.signin.test_sessions import sign_in

pytestmark = pytest.mark.django_db
MEMBERS = reverse("orgadmin:members")


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def is_signed_in(client: Client) -> bool:
    return client.get(reverse("signin:sessions")).status_code == 200


# --- the list ------------------------------------------------------------------------------

def test_the_list_shows_ways_in_used_and_last_sign_in(as_alice: Client, bob: User) -> None:
    sign_in(Client(), bob, method="google")
    sign_in(Client(), bob, method="passkey")
    page = page_text(as_alice.get(MEMBERS))
    assert 'data-label="Ways in used">Google, Passkey<' in page
    assert "Bob Ng" in page and "bob@northwind.example" in page
    # Alice signed in by email (the as_alice browser).
    assert 'data-label="Ways in used">Email link<' in page
    assert '<table class="rows"' in page


def test_search_finds_by_name_or_address(as_alice: Client, bob: User,
                                         northwind: Organization) -> None:
    make_user("erin@northwind.example", northwind, full_name="Erin Ito")
    page = page_text(as_alice.get(MEMBERS, {"q": "ng"}))
    assert "bob@northwind.example" in page and "erin@northwind.example" not in page
    page = page_text(as_alice.get(MEMBERS, {"q": "ERIN@"}))
    assert "erin@northwind.example" in page and "bob@northwind.example" not in page
    assert "Nobody in Northwind Logistics matches “zzz”" in page_text(
        as_alice.get(MEMBERS, {"q": "zzz"}))


def test_pages_of_25_with_a_bounded_number_of_queries(as_alice: Client,
                                                      northwind: Organization) -> None:
    for n in range(30):
        person = make_user(f"p{n:02}@northwind.example", northwind)
        sign_in(Client(), person)
    with CaptureQueriesContext(connection) as first:
        page_one = page_text(as_alice.get(MEMBERS))
    assert "Page 1 of 2" in page_one and "p23@northwind.example" in page_one  # alice first
    assert "p24@northwind.example" not in page_one
    page_two = page_text(as_alice.get(MEMBERS, {"page": "2"}))
    assert "p24@northwind.example" in page_two
    # A page number that is not one lands on a real page, never a 500.
    assert as_alice.get(MEMBERS, {"page": "nope"}).status_code == 200
    assert as_alice.get(MEMBERS, {"page": "999"}).status_code == 200
    with CaptureQueriesContext(connection) as again:
        as_alice.get(MEMBERS)
    assert len(again) == len(first) <= 20


# --- turning accounts off and on -----------------------------------------------------------

def test_disabling_ends_every_session_at_once_and_tells_the_person(
        as_alice: Client, alice: User, bob: User, northwind: Organization) -> None:
    laptop, phone = Client(), Client()
    sign_in(laptop, bob)
    sign_in(phone, bob, method="google")
    assert is_signed_in(laptop) and is_signed_in(phone)
    response = as_alice.post(reverse("orgadmin:disable", args=[bob.pk]))
    assert response.status_code == 302
    assert not is_signed_in(laptop) and not is_signed_in(phone)
    assert not User.objects.get(pk=bob.pk).is_active
    assert not UserSession.objects.filter(user=bob, ended_at__isnull=True).exists()
    event = AuthEvent.objects.get(tag=Tag.ORGADMIN_MEMBER_DISABLED)
    assert (event.actor, event.user, event.organization) == (alice, bob, northwind)
    notice = OutboundMessage.objects.get(to="bob@northwind.example", kind="orgadmin.notice")
    assert notice.subject == "Your Cloud Sentry account was turned off"
    assert "Alice Moreno (alice@northwind.example), an admin of Northwind Logistics, " \
           "turned off your Cloud Sentry portal account" in notice.text_body
    assert "signed out everywhere" in notice.html_body

    # Back on: old sessions stay dead, a new sign-in works.
    assert as_alice.post(reverse("orgadmin:enable", args=[bob.pk])).status_code == 302
    assert User.objects.get(pk=bob.pk).is_active and not is_signed_in(laptop)
    assert AuthEvent.objects.get(tag=Tag.ORGADMIN_MEMBER_ENABLED).actor == alice
    assert OutboundMessage.objects.filter(subject="Your Cloud Sentry account was turned back on"
                                          ).exists()


def test_an_admin_cannot_disable_themselves(as_alice: Client, alice: User,
                                            northwind: Organization) -> None:
    make_user("erin@northwind.example", northwind, admin=True)
    response = as_alice.post(reverse("orgadmin:disable", args=[alice.pk]))
    assert response.status_code == 409
    assert "You cannot turn off your own account" in page_text(response)
    assert "Nothing was changed." in page_text(response)
    assert User.objects.get(pk=alice.pk).is_active and is_signed_in(as_alice)


def test_staff_accounts_are_not_changed_here(as_alice: Client,
                                             northwind: Organization) -> None:
    sam = make_user("sam@cloudsentry.com", staff=True)
    Membership.objects.create(user=sam, organization=northwind)
    response = as_alice.post(reverse("orgadmin:disable", args=[sam.pk]))
    assert response.status_code == 403
    assert "managed by Cloud Sentry" in page_text(response)
    assert User.objects.get(pk=sam.pk).is_active


# --- the admin role ----------------------------------------------------------------------------

def test_make_and_remove_admin_tells_the_person(as_alice: Client, alice: User,
                                                bob: User) -> None:
    role = reverse("orgadmin:set_role", args=[bob.pk])
    assert as_alice.post(role, {"role": "admin"}).status_code == 302
    assert Membership.objects.get(user=bob).role == "admin"
    assert signed_in(bob).get(MEMBERS).status_code == 200
    made = OutboundMessage.objects.get(subject="You are now an admin of Northwind Logistics")
    assert made.to == "bob@northwind.example" and "made you an admin" in made.text_body
    assert as_alice.post(role, {"role": "member"}).status_code == 302
    assert Membership.objects.get(user=bob).role == "member"
    assert OutboundMessage.objects.filter(
        subject="You are no longer an admin of Northwind Logistics").exists()
    rows = AuthEvent.objects.filter(tag=Tag.ORGADMIN_MEMBER_ROLE_CHANGED).order_by("id")
    assert [(r.actor, r.user, r.detail["old"], r.detail["new"]) for r in rows] == [
        (alice, bob, "member", "admin"), (alice, bob, "admin", "member")]


def test_the_last_admin_cannot_remove_their_own_role(as_alice: Client, alice: User) -> None:
    response = as_alice.post(reverse("orgadmin:set_role", args=[alice.pk]), {"role": "member"})
    assert response.status_code == 409
    assert "needs at least one active admin" in page_text(response)
    assert Membership.objects.get(user=alice).role == "admin"
    assert not OutboundMessage.objects.exists()


def test_an_admin_may_step_down_when_another_remains(as_alice: Client, alice: User,
                                                     northwind: Organization) -> None:
    make_user("erin@northwind.example", northwind, admin=True)
    response = as_alice.post(reverse("orgadmin:set_role", args=[alice.pk]), {"role": "member"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert as_alice.get(MEMBERS).status_code == 403


def test_a_turned_off_admin_does_not_count(as_alice: Client, alice: User,
                                           northwind: Organization) -> None:
    erin = make_user("erin@northwind.example", northwind, admin=True, active=False)
    assert erin.membership.role == "admin"
    response = as_alice.post(reverse("orgadmin:set_role", args=[alice.pk]), {"role": "member"})
    assert response.status_code == 409


def test_a_bad_role_is_a_400(as_alice: Client, bob: User) -> None:
    response = as_alice.post(reverse("orgadmin:set_role", args=[bob.pk]), {"role": "owner"})
    assert response.status_code == 400
    assert "Choose Member or Organization admin" in page_text(response)


@pytest.mark.django_db(transaction=True)
def test_two_admins_removing_each_other_at_once_leave_one(on_postgres: None,
                                                          northwind: Organization) -> None:
    alice = make_user("alice@northwind.example", northwind, admin=True)
    erin = make_user("erin@northwind.example", northwind, admin=True)
    barrier = threading.Barrier(2, timeout=10)
    outcomes: list[str] = []

    def demote(actor: User, target: User) -> None:
        try:
            barrier.wait()
            members.set_role(request_as(Client(), method="post"), northwind, actor,
                             target.pk, "member")
            outcomes.append("changed")
        except LastAdmin:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=pair) for pair in ((alice, erin),
                                                                      (erin, alice))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes) == ["changed", "refused"]
    assert Membership.objects.filter(organization=northwind, role="admin").count() == 1


# --- recent sign-in ----------------------------------------------------------------------

def test_changes_need_a_recent_sign_in(as_alice: Client, bob: User) -> None:
    with time_machine.travel(now().timestamp() + 16 * 60, tick=False):
        response = as_alice.post(reverse("orgadmin:disable", args=[bob.pk]))
        assert response.status_code == 403
        assert "Sign in again" in page_text(response)
        assert as_alice.get(MEMBERS).status_code == 200  # reading is still fine
    assert User.objects.get(pk=bob.pk).is_active
    assert AuthEvent.objects.filter(tag=Tag.RECENT_SIGN_IN_REQUIRED).exists()
