"""Disable means out, at once: turning a person or an organization off ends every session.

The sessions here are real ones: a person signs in with the emailed link in one client,
staff turn them off in the admin in another, and the first client's next request is
signed out. Sessions begun with ``force_login`` have no "Your sessions" row, so nothing but
the session epoch can end them: those tests fail if the epoch leaves the session hash.
"""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Membership, Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.servicedesk.models import ServiceRequest
from portal.servicedesk.services import create_request
from portal.signin.models import SignInRequest, UserSession
from tests.accounts.conftest import client_for
from tests.accounts.test_admin import org_post, user_post
from tests.factories import make_org, make_user
from tests.signin.magic import ask, deliver_and_read
from tests.signin.test_magic_link_code import code_of
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"
BOB = "bob@northwind.example"


def signed_in_by_link(email: str, smtp: SMTPServer) -> Client:
    """Sign ``email`` in the way a person does: ask, open the emailed link in this browser."""
    smtp.clear()
    browser = Client()
    ask(browser, email)
    (link,) = deliver_and_read(smtp)
    assert browser.get(link.path).status_code == 302
    assert signed_in_as(browser) == email
    return browser


def signed_in_as(browser: Client) -> str | None:
    response = browser.get("/")
    return None if response.status_code == 302 else response.wsgi_request.user.email


def set_active(staff_client: Client, person: User, active: bool) -> None:
    data = user_post(person.email)
    if not active:
        del data["is_active"]
    response = staff_client.post(reverse("admin:accounts_user_change", args=[person.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]


def set_org_active(staff_client: Client, org: Organization, active: bool) -> None:
    data = org_post(org.name)
    if not active:
        del data["is_active"]
    response = staff_client.post(reverse("admin:accounts_organization_change", args=[org.pk]),
                                 data)
    assert response.status_code == 302, response.content.decode()[:2000]


# --- a person --------------------------------------------------------------------------------

def test_disabling_in_the_admin_ends_a_live_session_at_once(
        staff_client: Client, alice: User, smtp: SMTPServer) -> None:
    browser = signed_in_by_link(ALICE, smtp)
    row = UserSession.objects.get(user=alice)
    set_active(staff_client, alice, False)
    assert signed_in_as(browser) is None
    row.refresh_from_db()
    assert row.ended_at is not None  # "Your sessions" says it ended
    assert not Session.objects.filter(session_key=row.session_key).exists()
    event = AuthEvent.objects.get(tag=Tag.SESSIONS_REVOKED)
    assert (event.user, event.reason, event.detail["sessions_ended"]) == (
        alice, "user_disabled", 1)


def test_disabled_person_cookie_is_dead_after_re_enabling(
        staff_client: Client, alice: User, smtp: SMTPServer) -> None:
    by_link = signed_in_by_link(ALICE, smtp)
    forced = client_for(alice)  # a session no "Your sessions" row knows about
    set_active(staff_client, alice, False)
    set_active(staff_client, alice, True)
    assert signed_in_as(by_link) is None
    assert signed_in_as(forced) is None
    # A fresh sign-in works again: only the old sessions are dead.
    assert signed_in_as(signed_in_by_link(ALICE, smtp)) == ALICE


@pytest.mark.parametrize("path", ["save", "queryset update"])
def test_turning_someone_off_from_a_shell_ends_their_sessions(path: str, alice: User) -> None:
    browser = client_for(alice)
    if path == "save":
        alice.is_active = False
        alice.save()
        alice.is_active = True
        alice.save()
    else:
        User.objects.filter(pk=alice.pk).update(is_active=False)
        User.objects.filter(pk=alice.pk).update(is_active=True)
    assert signed_in_as(browser) is None
    assert AuthEvent.objects.get(tag=Tag.SESSIONS_REVOKED).reason == "user_disabled"


def test_saving_with_update_fields_still_ends_sessions(alice: User) -> None:
    browser = client_for(alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    User.objects.filter(pk=alice.pk).update(is_active=True)
    assert signed_in_as(browser) is None


def test_a_changed_address_ends_the_sessions_of_the_old_one(alice: User) -> None:
    browser = client_for(alice)
    alice.email = "alice.moreno@northwind.example"
    alice.save()
    assert signed_in_as(browser) is None
    assert AuthEvent.objects.get(tag=Tag.SESSIONS_REVOKED).reason == "email_changed"


def test_removing_staff_status_ends_the_staff_members_sessions(sam: User) -> None:
    browser = client_for(sam)
    User.objects.filter(pk=sam.pk).update(is_staff=False, is_superuser=False)
    User.objects.filter(pk=sam.pk).update(is_staff=True, is_superuser=True)
    assert browser.get(reverse("admin:index")).status_code == 302
    assert AuthEvent.objects.get(tag=Tag.SESSIONS_REVOKED).reason == (
        "staff_removed,superuser_removed")


def test_saving_without_taking_anything_away_keeps_sessions(alice: User) -> None:
    browser = client_for(alice)
    alice.full_name = "Alice M. Moreno"
    alice.save()
    User.objects.filter(pk=alice.pk).update(is_active=True, is_staff=False)  # already so
    assert signed_in_as(browser) == ALICE
    assert not AuthEvent.objects.filter(tag=Tag.SESSIONS_REVOKED).exists()


# --- memberships -----------------------------------------------------------------------------

def test_moving_someone_to_another_organization_signs_them_out(alice: User) -> None:
    browser = client_for(alice)
    contoso = make_org("Contoso Freight", ["contoso.example"])
    membership = alice.membership
    membership.organization = contoso
    membership.save()
    assert signed_in_as(browser) is None
    assert AuthEvent.objects.get(tag=Tag.SESSIONS_REVOKED).reason == "organization_changed"


def test_removing_a_membership_signs_the_person_out(alice: User) -> None:
    browser = client_for(alice)
    Membership.objects.filter(user=alice).delete()
    assert signed_in_as(browser) is None
    assert AuthEvent.objects.get(tag=Tag.SESSIONS_REVOKED).reason == "membership_removed"


def test_deleting_a_person_or_an_organization_with_members_just_works(
        staff_client: Client, northwind: Organization, alice: User) -> None:
    bob = make_user(BOB, northwind)
    bob_browser = client_for(bob)
    User.objects.get(pk=alice.pk).delete()
    assert not User.objects.filter(pk=alice.pk).exists()
    response = staff_client.post(reverse("admin:accounts_organization_delete",
                                         args=[northwind.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert signed_in_as(bob_browser) is None  # bob stays, without an organization or session
    assert User.objects.get(pk=bob.pk).organization is None


# --- an organization -------------------------------------------------------------------------

def test_turning_an_organization_off_signs_every_member_out(
        staff_client: Client, northwind: Organization, alice: User, smtp: SMTPServer) -> None:
    make_user(BOB, northwind)
    alice_browser = signed_in_by_link(ALICE, smtp)
    bob_browser = signed_in_by_link(BOB, smtp)
    set_org_active(staff_client, northwind, False)
    assert signed_in_as(alice_browser) is None and signed_in_as(bob_browser) is None
    assert not UserSession.objects.filter(ended_at__isnull=True).exists()
    assert sorted(AuthEvent.objects.filter(tag=Tag.SESSIONS_REVOKED).values_list(
        "email", "reason")) == [(ALICE, "organization_disabled"), (BOB, "organization_disabled")]
    set_org_active(staff_client, northwind, True)
    assert signed_in_as(alice_browser) is None and signed_in_as(bob_browser) is None


def test_service_desk_pages_refuse_members_of_a_turned_off_organization(
        staff_client: Client, northwind: Organization, alice: User) -> None:
    create_request(northwind, title="Printer on fire", description="Really.")
    browser = client_for(alice)
    assert browser.get(reverse("servicedesk:detail", args=[1001])).status_code == 200
    set_org_active(staff_client, northwind, False)
    for name, args in (("home", []), ("servicedesk:list", []), ("servicedesk:detail", [1001])):
        response = browser.get(reverse(name, args=args))
        assert response.status_code == 302 and response["Location"].startswith("/signin/")
    filed = browser.post(reverse("servicedesk:new"), {
        "title": "Still here?", "description": "Let me in.", "priority": "normal"})
    assert filed.status_code == 302 and filed["Location"].startswith("/signin/")
    commented = browser.post(reverse("servicedesk:comment", args=[1001]), {"body": "Hello?"})
    assert commented.status_code == 302
    assert ServiceRequest.objects.count() == 1
    assert not ServiceRequest.objects.get().comments.exists()


def test_a_turned_off_organization_is_refused_even_if_changed_behind_the_portals_back(
        northwind: Organization, alice: User) -> None:
    """Raw SQL skips the epoch, but the backend still refuses members of an organization
    that is off: no page treats them as signed in while it stays off."""
    browser = client_for(alice)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_organization SET is_active = %s WHERE id = %s",
                       [False, northwind.pk])
    assert signed_in_as(browser) is None


def test_members_of_a_turned_off_organization_get_no_link_and_no_code(
        northwind: Organization, alice: User, smtp: SMTPServer) -> None:
    Organization.objects.filter(pk=northwind.pk).update(is_active=False)
    browser = Client()
    ask(browser, ALICE)
    assert deliver_and_read(smtp, count=0) == []
    assert SignInRequest.objects.get().decline_reason == "organization_disabled"
    # No code was minted: whatever the asking tab types answers like a wrong code.
    assert browser.post(reverse("signin:code"), {"code": "123456"}).status_code == 400
    assert signed_in_as(browser) is None


def test_a_code_sent_before_the_organization_was_turned_off_cannot_sign_in(
        northwind: Organization, alice: User, smtp: SMTPServer) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    code = "".join(code_of(link).split())
    Organization.objects.filter(pk=northwind.pk).update(is_active=False)
    browser.post(reverse("signin:code"), {"code": code})
    assert signed_in_as(browser) is None
    assert SignInRequest.objects.get().consumed_at is None


def test_a_link_sent_before_the_organization_was_turned_off_cannot_sign_in(
        northwind: Organization, alice: User, smtp: SMTPServer) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    northwind.is_active = False
    northwind.save()
    response = browser.get(link.path)
    assert response["Location"] == "/signin/link-problem/"
    assert browser.get(response["Location"]).status_code == 403
    assert signed_in_as(browser) is None
    assert SignInRequest.objects.get().consumed_at is None
