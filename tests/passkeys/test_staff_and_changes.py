"""Staff need a passkey session for the admin; enrolment links; changes need a recent
sign-in and send a notice; the offer; organizations requiring passkeys for admins."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.mail.models import OutboundMessage
from portal.passkeys import flows
from portal.passkeys.models import EnrolmentLink, Passkey
from portal.signin.models import UserSession
from portal.signin.sessions import SESSION_METHOD_KEY
from tests.factories import make_user
from tests.passkeys.support import BACKEND, passkey_client
from tests.signin.magic import ask, deliver_and_read

pytestmark = pytest.mark.django_db
ENROL = re.compile(r"https?://\S+/passkeys/enrol/([A-Za-z0-9_-]+)/")


@pytest.fixture
def sam():
    return make_user("sam@cloudsentry.com", staff=True, superuser=True, full_name="Sam Patel")


def email_client(user) -> Client:
    client = Client()
    client.force_login(user, backend=BACKEND)
    session = client.session
    session[SESSION_METHOD_KEY] = "email"
    session.save()
    return client


# --- 1. Staff must use a passkey for the admin ------------------------------------------

def test_staff_with_a_passkey_session_open_the_admin(sam) -> None:
    assert passkey_client(sam).get("/admin/").status_code == 200


def test_staff_who_own_a_passkey_but_signed_in_by_email_are_sent_to_use_it(sam) -> None:
    Passkey.objects.create(user=sam, credential_id="c2Ft", public_key=b"k", name="Laptop")
    client = email_client(sam)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/passkeys/use/?next=%2Fadmin%2F"
    assert "Sign in with your passkey" in response.content.decode()
    assert client.get("/admin/accounts/user/").status_code == 302  # every page, not the index


def test_staff_without_a_passkey_are_asked_to_add_one(sam) -> None:
    response = email_client(sam).get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/passkeys/"
    assert "The staff admin opens only when you sign in with a passkey" in (
        response.content.decode())


def test_removing_the_passkey_that_signed_in_drops_admin_access(sam) -> None:
    client = passkey_client(sam)
    passkey = Passkey.objects.get(user=sam)
    assert client.get("/admin/").status_code == 200
    client.post(f"/passkeys/{passkey.pk}/remove/")  # force_login just now: a recent sign-in
    assert not Passkey.objects.filter(pk=passkey.pk).exists()
    assert client.get("/admin/").status_code == 302


def test_a_passkey_session_is_no_pass_for_people_who_are_not_staff(alice) -> None:
    assert passkey_client(alice).get("/admin/", follow=True).status_code == 403


def test_adduser_staff_prints_a_one_time_enrolment_link(db) -> None:
    out = io.StringIO()
    call_command("adduser", "first@cloudsentry.com", "--staff", stdout=out)
    match = ENROL.search(out.getvalue())
    assert match, out.getvalue()
    secret, path = match.group(1), match.group(0).split("://", 1)[1].split("/", 1)[1]
    link = EnrolmentLink.objects.get()
    assert link.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_ENROLMENT_ISSUED, user=link.user).exists()
    browser = Client()
    # Opening it (a scanner, a preview) uses nothing up.
    page = browser.get(f"/{path}")
    assert page.status_code == 200 and "Continue as first@cloudsentry.com" in page.content.decode()
    assert page["Referrer-Policy"] == "no-referrer"
    assert EnrolmentLink.objects.get().used_at is None
    response = browser.post(f"/{path}")
    assert response.status_code == 302 and response["Location"] == "/passkeys/"
    assert browser.session[SESSION_METHOD_KEY] == "enrolment"
    assert UserSession.objects.filter(user=link.user, method="enrolment").count() == 1
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_ENROLMENT_USED, user=link.user).count() == 1
    # Signed in to add a passkey, but the admin still wants a passkey sign-in.
    assert browser.get("/admin/").status_code == 302
    again = Client().post(f"/{path}")
    assert again.status_code == 410 and b"already been used" in again.content
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_FAILED, reason="enrolment_link_used").exists()


def test_enrolment_link_expires_and_a_newer_one_replaces_it(sam) -> None:
    from portal.passkeys import enrolment

    start = timezone.now()
    with time_machine.travel(start, tick=False):
        older = enrolment.issue(sam).split("/passkeys/", 1)[1]
        newer = enrolment.issue(sam).split("/passkeys/", 1)[1]
    with time_machine.travel(start + timedelta(seconds=settings.PASSKEY_ENROLMENT_SECONDS),
                             tick=False):
        assert Client().post(f"/passkeys/{newer}").status_code == 410
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert Client().post(f"/passkeys/{older}").status_code == 404
        assert Client().post(f"/passkeys/{newer}").status_code == 302
    assert Client().get("/passkeys/enrol/not-a-link/").status_code == 404


def test_passkey_reset_removes_passkeys_ends_sessions_and_prints_a_new_link(sam, smtp) -> None:
    client = passkey_client(sam)
    assert client.get("/admin/").status_code == 200
    out = io.StringIO()
    call_command("passkey-reset", "SAM@cloudsentry.com", stdout=out)
    assert "Removed 1 passkey of sam@cloudsentry.com" in out.getvalue()
    assert ENROL.search(out.getvalue())
    assert not Passkey.objects.filter(user=sam).exists()
    assert client.get("/admin/").status_code == 302  # that session is over
    assert "_auth_user_id" not in client.session
    row = AuthEvent.objects.get(tag=Tag.PASSKEY_RESET)
    assert row.user == sam and row.detail["removed"] == 1
    notice = OutboundMessage.objects.get(kind="passkey.notice")
    assert notice.to == sam.email and "support removed every passkey" in notice.text_body


def test_passkey_reset_of_an_unknown_address_changes_nothing(db) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Nobody has the address"):
        call_command("passkey-reset", "nobody@cloudsentry.com", stdout=io.StringIO())
    assert not AuthEvent.objects.exists()


# --- 4. Changes need a recent sign-in and send a notice ---------------------------------

def test_adding_or_removing_needs_a_sign_in_in_the_last_fifteen_minutes(alice) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = passkey_client(alice)
        passkey = Passkey.objects.get(user=alice)
    later = start + timedelta(seconds=settings.RECENT_SIGN_IN_SECONDS)
    with time_machine.travel(later, tick=False):
        refused = client.post("/passkeys/add/options/")
        assert refused.status_code == 403 and refused.json()["title"] == (
            "Please sign in again first")
        page = client.post(f"/passkeys/{passkey.pk}/remove/")
        assert page.status_code == 403 and "Nothing was changed" in page.content.decode()
        assert Passkey.objects.filter(pk=passkey.pk).exists()
        listing = client.get("/passkeys/").content.decode()
        assert "Sign in again" in listing and 'id="passkey-add"' not in listing
        # "Sign in again" signs this browser out and opens the sign-in page for the address.
        again = client.post("/passkeys/sign-in-again/")
        assert again["Location"].startswith("/signin/?next=%2Fpasskeys%2F&email=alice")
        assert "_auth_user_id" not in client.session
    assert OutboundMessage.objects.filter(kind="passkey.notice").count() == 0
    just_in_time = start + timedelta(seconds=settings.RECENT_SIGN_IN_SECONDS)
    with time_machine.travel(just_in_time, tick=False):
        assert passkey_client(alice).post("/passkeys/add/options/").status_code == 200


def test_removing_a_passkey_sends_a_notice_and_offers_to_sign_out_other_sessions(
        alice, smtp) -> None:
    laptop = Client()
    ask(laptop, alice.email)
    (link,) = deliver_and_read(smtp)
    laptop.get(link.path)  # another signed-in session of Alice's
    client = passkey_client(alice)
    passkey = Passkey.objects.get(user=alice)
    page = client.post(f"/passkeys/{passkey.pk}/remove/", follow=True).content.decode()
    assert "Sign out other sessions" in page
    notice = OutboundMessage.objects.get(kind="passkey.notice")
    assert notice.to == alice.email and notice.subject.startswith("A passkey was removed")
    assert "Test key" in notice.text_body and "Test key" in notice.html_body
    # No tracking: no images, no link to anywhere but the portal.
    assert "<img" not in notice.html_body
    assert set(re.findall(r'href="([^"]+)"', notice.html_body)) == {
        f"{settings.PORTAL_BASE_URL}/passkeys/", f"{settings.PORTAL_BASE_URL}/signin/sessions/"}
    # The offer is made once, right after the change.
    assert "Sign out other sessions" not in client.get("/passkeys/").content.decode()


# --- 2. The offer -----------------------------------------------------------------------

OFFER = "Sign in faster next time: add a passkey"


def test_offer_appears_once_after_an_email_sign_in_and_not_for_passkey_sessions(
        alice, smtp) -> None:
    browser = Client()
    ask(browser, alice.email)
    (link,) = deliver_and_read(smtp)
    home = browser.get(link.path, follow=True).content.decode()
    assert OFFER in home and 'action="/passkeys/offer/dismiss/"' in home
    assert OFFER not in browser.get("/").content.decode()  # once per sign-in, not nagging
    assert OFFER not in passkey_client(alice).get("/").content.decode()


def test_nobody_with_a_passkey_sees_the_offer(alice) -> None:
    Passkey.objects.create(user=alice, credential_id="YWxp", public_key=b"k", name="Phone")
    assert OFFER not in email_client(alice).get("/").content.decode()


def test_a_dismissed_offer_stays_dismissed_in_this_browser(alice) -> None:
    client = email_client(alice)
    response = client.post("/passkeys/offer/dismiss/", {"next": "/requests/"})
    assert response.status_code == 302 and response["Location"] == "/requests/"
    cookie = response.cookies[settings.PASSKEY_OFFER_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["max-age"]
    client.force_login(alice, backend=BACKEND)  # a later sign-in in the same browser
    session = client.session
    session[SESSION_METHOD_KEY] = "email"
    session.save()
    assert OFFER not in client.get("/").content.decode()
    # A dismiss never sends anyone off the site.
    offsite = Client().post("/passkeys/offer/dismiss/", {"next": "https://evil.example/"})
    assert offsite["Location"] == "/"


# --- 5. Organizations can require passkeys for their admins -----------------------------

def test_admins_of_an_organization_that_requires_passkeys_cannot_dismiss_the_offer(
        alice, northwind) -> None:
    bob = make_user("bob@northwind.example", northwind)
    assert not flows.must_use_passkey(alice)
    northwind.require_passkeys_for_admins = True
    northwind.save()
    alice.refresh_from_db()
    assert flows.must_use_passkey(alice) and not flows.must_use_passkey(bob)
    client = email_client(alice)
    client.cookies[settings.PASSKEY_OFFER_COOKIE] = "dismissed"
    page = client.get("/").content.decode()
    assert "Your account needs a passkey" in page and "Not now" not in page
    assert OFFER in email_client(bob).get("/").content.decode()  # members: the usual offer


def test_the_organization_admin_shows_the_passkey_requirement(northwind) -> None:
    sam = make_user("sam@cloudsentry.com", staff=True, superuser=True)
    page = passkey_client(sam).get(f"/admin/accounts/organization/{northwind.pk}/change/")
    assert page.status_code == 200
    assert 'name="require_passkeys_for_admins"' in page.content.decode()
