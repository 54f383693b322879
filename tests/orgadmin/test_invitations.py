"""Invitations: the welcome email through real SMTP, the scanner-safe link, resend, revoke,
expiry, the one-organization rule, the policy at acceptance, limits and bad input."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Membership, Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.mail.models import OutboundMessage
from portal.orgadmin.models import Invitation
from portal.signin.models import UserSession
from tests.factories import make_user
from tests.orgadmin.conftest import invitation_links, signed_in
from tests.signin.magic import html_of, text_of
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db
DORA = "dora@northwind.example"
MEMBERS = reverse("orgadmin:members")


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def invite(client: Client, email: str = DORA, role: str = "member") -> Any:
    return client.post(reverse("orgadmin:invite"), {"email": email, "role": role})


def signed_in_as(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def test_invitee_signs_in_from_the_welcome_email(as_alice: Client, alice: User,
                                                 northwind: Organization,
                                                 smtp: SMTPServer) -> None:
    response = invite(as_alice, " Dora@Northwind.example ")
    assert response.status_code == 302 and response["Location"] == MEMBERS
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (DORA, "member", alice)
    # The outbox row holds no link: the worker renders it at send time.
    queued = OutboundMessage.objects.get(kind="orgadmin.invitation")
    assert queued.text_body == "" and queued.html_body == ""
    assert "waiting" in page_text(as_alice.get(MEMBERS)).lower()

    ((url, token, email),) = invitation_links(smtp)
    assert email.rcpt_tos == [DORA]
    text, html = text_of(email), html_of(email)
    assert "Alice Moreno (alice@northwind.example) invited you to join Northwind Logistics" in text
    assert url in html and "<img" not in html
    assert Invitation.objects.get().token_hash != token  # only the hash is stored

    dora = Client()
    page = dora.get(url)
    # Scanner-safe: loading the link shows one button and changes nothing.
    assert page.status_code == 200 and page["Referrer-Policy"] == "no-referrer"
    assert "Accept and continue as dora@northwind.example" in page_text(page)
    assert not User.objects.filter(email=DORA).exists()
    assert Invitation.objects.get().accepted_at is None

    accepted = dora.post(url)
    assert accepted.status_code == 302 and accepted["Location"] == "/"
    person = User.objects.get(email=DORA)
    assert signed_in_as(dora) == person and person.is_active
    assert (person.membership.organization, person.membership.role) == (northwind, "member")
    assert UserSession.objects.get(user=person).method == "invitation"
    signed = AuthEvent.objects.get(tag=Tag.INVITATION_SIGNED_IN)
    assert (signed.user, signed.organization, signed.detail["method"]) == (
        person, northwind, "invitation")
    assert AuthEvent.objects.filter(tag=Tag.ORGADMIN_INVITATION_ACCEPTED, user=person).exists()
    sent = AuthEvent.objects.get(tag=Tag.ORGADMIN_INVITATION_SENT)
    assert (sent.actor, sent.organization, sent.email) == (alice, northwind, DORA)

    # Single use: the same link again is a plain "already used" page.
    again = Client().post(url)
    assert again.status_code == 410
    assert "already been used" in again.content.decode()


def test_an_invited_admin_becomes_an_admin(as_alice: Client, smtp: SMTPServer) -> None:
    invite(as_alice, role="admin")
    ((url, _, email),) = invitation_links(smtp)
    assert "as an organization admin" in text_of(email)
    Client().post(url)
    assert Membership.objects.get(user__email=DORA).role == "admin"


def test_resend_kills_the_old_link(as_alice: Client, alice: User, smtp: SMTPServer) -> None:
    invite(as_alice)
    ((old_url, _, _),) = invitation_links(smtp)
    smtp.clear()
    invitation = Invitation.objects.get()
    assert as_alice.post(reverse("orgadmin:resend", args=[invitation.pk])).status_code == 302
    ((new_url, _, _),) = invitation_links(smtp)
    assert new_url != old_url
    dead = Client().get(old_url)
    assert dead.status_code == 404
    assert "ask your organization's admin for a new invitation" in page_text(dead).lower()
    assert Client().post(new_url).status_code == 302
    event = AuthEvent.objects.get(tag=Tag.ORGADMIN_INVITATION_RESENT)
    assert (event.actor, event.detail["send_count"]) == (alice, 2)


def test_an_email_queued_before_a_resend_is_not_sent(as_alice: Client,
                                                     smtp: SMTPServer) -> None:
    invite(as_alice)
    as_alice.post(reverse("orgadmin:resend", args=[Invitation.objects.get().pk]))
    links = invitation_links(smtp)  # one email arrives: the first was cancelled
    assert len(links) == 1 and len(smtp.messages) == 1
    assert OutboundMessage.objects.filter(status=OutboundMessage.Status.CANCELLED).count() == 1
    assert Client().post(links[0][0]).status_code == 302


def test_revoked_invitation_page(as_alice: Client, alice: User, smtp: SMTPServer) -> None:
    invite(as_alice)
    ((url, _, _),) = invitation_links(smtp)
    invitation = Invitation.objects.get()
    assert as_alice.post(reverse("orgadmin:revoke", args=[invitation.pk])).status_code == 302
    for response in (Client().get(url), Client().post(url)):
        assert response.status_code == 410
        body = page_text(response)
        assert "This invitation was withdrawn" in body
        assert "Ask your organization's admin for a new invitation." in body
    assert not User.objects.filter(email=DORA).exists()
    assert AuthEvent.objects.get(tag=Tag.ORGADMIN_INVITATION_REVOKED).actor == alice
    assert AuthEvent.objects.filter(tag=Tag.INVITATION_REFUSED,
                                    reason="invitation_revoked").exists()
    # Revoking twice, or resending a revoked one: a clear refusal, nothing changes.
    twice = as_alice.post(reverse("orgadmin:revoke", args=[invitation.pk]))
    assert twice.status_code == 409
    assert "already accepted or withdrawn" in page_text(twice)


def test_expired_invitation_page_at_the_boundary(as_alice: Client, smtp: SMTPServer) -> None:
    invite(as_alice)
    ((url, _, _),) = invitation_links(smtp)
    expires = Invitation.objects.get().expires_at
    assert expires - Invitation.objects.get().sent_at == timedelta(
        seconds=settings.INVITATION_TTL_SECONDS)
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        assert Client().get(url).status_code == 200
    with time_machine.travel(expires, tick=False):
        response = Client().post(url)
    assert response.status_code == 410
    body = page_text(response)
    assert "This invitation has expired" in body
    assert "Ask your organization's admin for a new invitation." in body
    assert not User.objects.filter(email=DORA).exists()


def test_an_expired_invitation_can_be_resent(as_alice: Client, smtp: SMTPServer) -> None:
    invite(as_alice)
    invitation = Invitation.objects.get()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=now() - timedelta(hours=1))
    assert "Expired" in page_text(as_alice.get(MEMBERS))
    smtp.clear()
    assert as_alice.post(reverse("orgadmin:resend", args=[invitation.pk])).status_code == 302
    ((url, _, _),) = invitation_links(smtp)
    assert Client().post(url).status_code == 302


def test_unknown_token_page(db: None) -> None:
    for token in ("x" * 43, "not-a-token"):
        response = Client().get(reverse("orgadmin:invitation", args=[token]))
        assert response.status_code == 404
        assert "This invitation link is not valid" in page_text(response)


def test_someone_of_another_organization_cannot_be_invited(as_alice: Client, carl: User,
                                                           smtp: SMTPServer) -> None:
    response = invite(as_alice, "carl@contoso.example")
    assert response.status_code == 409
    body = page_text(response)
    assert "belongs to someone in another organization" in body
    assert "contact Cloud Sentry support" in body
    assert "Contoso" not in body  # never says which customer they belong to
    assert not Invitation.objects.exists() and not OutboundMessage.objects.exists()


def test_a_new_address_at_another_organizations_domain_cannot_be_invited(
        as_alice: Client, contoso: Organization) -> None:
    response = invite(as_alice, "newcomer@contoso.example")
    assert response.status_code == 409
    assert "email domain another organization has registered" in page_text(response)
    assert "Contoso" not in page_text(response)
    assert not Invitation.objects.exists()


def test_staff_cannot_be_invited(as_alice: Client) -> None:
    make_user("sam@cloudsentry.com", staff=True)
    assert invite(as_alice, "sam@cloudsentry.com").status_code == 409
    assert not Invitation.objects.exists()


def test_joining_another_organization_meanwhile_stops_the_invitation(
        as_alice: Client, contoso: Organization, smtp: SMTPServer) -> None:
    invite(as_alice)
    ((url, _, _),) = invitation_links(smtp)
    make_user(DORA, contoso)  # staff moved her to Contoso before she clicked
    response = Client().post(url)
    assert response.status_code == 409
    assert "This invitation cannot be used" in page_text(response)
    assert User.objects.get(email=DORA).membership.organization == contoso


def test_already_a_member(as_alice: Client, bob: User) -> None:
    response = invite(as_alice, "bob@northwind.example")
    assert response.status_code == 409
    assert "already a member of your organization" in page_text(response)
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    response = invite(as_alice, "bob@northwind.example")
    assert "account is turned off. Turn it back on" in page_text(response)
    assert not Invitation.objects.exists()


def test_a_second_invitation_for_the_same_address_points_to_resend(as_alice: Client) -> None:
    invite(as_alice)
    response = invite(as_alice)
    assert response.status_code == 409
    assert "Use Resend below" in page_text(response)
    assert Invitation.objects.count() == 1


def test_a_disabled_member_is_not_turned_on_by_an_old_invitation(
        as_alice: Client, alice: User, smtp: SMTPServer) -> None:
    invite(as_alice)
    ((url, _, _),) = invitation_links(smtp)
    assert Client().post(url).status_code == 302
    dora = User.objects.get(email=DORA)
    dora.is_active = False
    dora.save(update_fields=["is_active"])
    assert Client().post(url).status_code == 410
    assert not User.objects.get(email=DORA).is_active


def test_a_former_person_without_an_organization_is_turned_back_on(
        as_alice: Client, northwind: Organization, smtp: SMTPServer) -> None:
    make_user(DORA, active=False)
    invite(as_alice)
    ((url, _, _),) = invitation_links(smtp)
    Client().post(url)
    dora = User.objects.get(email=DORA)
    assert dora.is_active and dora.membership.organization == northwind


def test_bad_input_is_a_400_with_a_message(as_alice: Client) -> None:
    for email, role, words in (("", "member", "Enter your email address."),
                               ("not an address", "member", "Enter an email address like"),
                               ("a@b.example\r\nBcc: x@y.example", "member", "line breaks"),
                               (DORA, "owner", "Choose Member or Organization admin")):
        response = invite(as_alice, email, role)
        assert response.status_code == 400, email
        assert words in page_text(response), email
    assert not Invitation.objects.exists()


def test_invitations_are_rate_limited_per_admin(as_alice: Client, alice: User,
                                                settings: Any) -> None:
    settings.INVITATION_RATE_LIMITS = {"admin": "2/1h", "organization": "100/1d"}
    assert invite(as_alice, "one@northwind.example").status_code == 302
    assert invite(as_alice, "two@northwind.example").status_code == 302
    refused = invite(as_alice, "three@northwind.example")
    assert refused.status_code == 429
    assert "Try again in" in page_text(refused)
    assert Invitation.objects.count() == 2
    assert AuthEvent.objects.get(tag=Tag.ORGADMIN_INVITATION_RATE_LIMITED).actor == alice


def test_invitations_are_rate_limited_per_organization(
        northwind: Organization, alice: User, settings: Any) -> None:
    settings.INVITATION_RATE_LIMITS = {"admin": "10/1h", "organization": "1/1d"}
    other_admin = make_user("erin@northwind.example", northwind, admin=True)
    assert invite(signed_in(alice), "one@northwind.example").status_code == 302
    assert invite(signed_in(other_admin), "two@northwind.example").status_code == 429


# --- the organization's policy at acceptance ---------------------------------------------

def test_without_email_sign_in_the_invitee_joins_but_signs_in_another_way(
        as_alice: Client, northwind: Organization, smtp: SMTPServer, settings: Any) -> None:
    settings.OIDC_PROVIDERS = {
        name: {"client_id": name, "client_secret": "s",
               "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
        for name in ("google", "microsoft")}
    northwind.allow_email_link = False
    northwind.allow_google = False
    northwind.save()
    invite(as_alice)
    ((url, _, email),) = invitation_links(smtp)
    assert "After accepting, sign in with Microsoft" in text_of(email)
    dora = Client()
    response = dora.post(url)
    assert response.status_code == 200
    body = page_text(response)
    assert "You have joined Northwind Logistics" in body
    assert "Sign in with Microsoft" in body
    assert "Sign in with Google" not in body and "Email me a sign-in link" not in body
    assert signed_in_as(dora) is None  # the policy is not bypassed
    assert User.objects.get(email=DORA).membership.organization == northwind
    assert not AuthEvent.objects.filter(tag=Tag.INVITATION_SIGNED_IN).exists()


def test_strict_mode_joins_without_signing_in(as_alice: Client, northwind: Organization,
                                             smtp: SMTPServer) -> None:
    northwind.strict_same_browser = True
    northwind.save()
    invite(as_alice)
    ((url, _, _),) = invitation_links(smtp)
    dora = Client()
    response = dora.post(url)
    assert response.status_code == 200 and signed_in_as(dora) is None
    assert "Email me a sign-in link" in page_text(response)


def test_invitation_link_secrets_stay_out_of_logs() -> None:
    from portal.core.logs import redact

    token = "A" * 43
    assert redact(f"GET /organization/invitation/{token}/ 200") == (
        "GET /organization/invitation/[redacted]/ 200")
    assert token not in redact(f"Not Found: /passkeys/enrol/{token}/")


def test_email_times_use_the_organizations_zone(as_alice: Client, northwind: Organization,
                                                smtp: SMTPServer) -> None:
    northwind.time_zone = "Asia/Tokyo"
    northwind.save()
    with time_machine.travel(now().replace(hour=12, minute=0), tick=False):
        invite(as_alice)
        ((_, _, email),) = invitation_links(smtp)
    assert "JST" in text_of(email)
