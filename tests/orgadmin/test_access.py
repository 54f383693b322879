"""Every organization admin URL: anonymous → sign in, a plain member → 403, another
organization's admin → 404 for this organization's ids (exactly like ids that do not exist).
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Membership, Organization, User
from portal.audit.models import AuthEvent
from portal.orgadmin.models import Invitation
from tests.orgadmin.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation(northwind: Organization, alice: User) -> Invitation:
    from portal.orgadmin import invitations
    from tests.signin.magic import request_as

    request = request_as(Client(), "/organization/members/invite/", method="post")
    return invitations.invite(request, northwind, alice, email="dora@northwind.example")


def _posts(bob: User, invitation: Invitation) -> list[str]:
    return [reverse("orgadmin:invite"),
            reverse("orgadmin:disable", args=[bob.pk]),
            reverse("orgadmin:enable", args=[bob.pk]),
            reverse("orgadmin:set_role", args=[bob.pk]),
            reverse("orgadmin:resend", args=[invitation.pk]),
            reverse("orgadmin:revoke", args=[invitation.pk]),
            reverse("orgadmin:policy")]


def _pages() -> list[str]:
    return [reverse("orgadmin:index"), reverse("orgadmin:members"), reverse("orgadmin:policy")]


def test_anonymous_visitors_are_sent_to_sign_in(bob: User, invitation: Invitation) -> None:
    client = Client()
    for url in _pages():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("signin:start") + "?next="), url
    for url in _posts(bob, invitation):
        response = client.post(url, {"role": "admin", "email": "x@northwind.example"})
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("signin:start")), url
    assert User.objects.get(pk=bob.pk).is_active


def test_a_plain_member_gets_403_everywhere(bob: User, invitation: Invitation) -> None:
    client = signed_in(bob)
    for url in _pages():
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Only your organization's admins" in response.content.decode()
    for url in _posts(bob, invitation):
        assert client.post(url, {"role": "admin", "email": "x@northwind.example",
                                 "time_zone": "UTC", "allow_email_link": "on"}
                           ).status_code == 403, url
    assert Membership.objects.get(user=bob).role == "member"
    assert not AuthEvent.objects.filter(tag__startswith="orgadmin:member").exists()


def test_another_organizations_admin_gets_404_for_northwind_ids(
        bob: User, carl: User, invitation: Invitation) -> None:
    client = signed_in(carl)
    for url in _posts(bob, invitation)[1:6]:
        response = client.post(url, {"role": "admin"})
        assert response.status_code == 404, url
    bob.refresh_from_db()
    invitation.refresh_from_db()
    assert bob.is_active and Membership.objects.get(user=bob).role == "member"
    assert invitation.revoked_at is None and invitation.send_count == 1
    assert not AuthEvent.objects.filter(actor=carl).exists()


def test_another_organizations_admin_sees_and_changes_only_their_own(
        northwind: Organization, contoso: Organization, alice: User, bob: User, carl: User,
        invitation: Invitation) -> None:
    client = signed_in(carl)
    page = client.get(reverse("orgadmin:members")).content.decode()
    assert "carl@contoso.example" in page
    for other in ("alice@northwind.example", "bob@northwind.example", "dora@northwind.example"):
        assert other not in page
    response = client.get(reverse("orgadmin:members"), {"q": "northwind"})
    assert "bob@northwind.example" not in response.content.decode()
    assert "northwind.example" not in client.get(reverse("orgadmin:policy")).content.decode()
    client.post(reverse("orgadmin:policy"), {"allow_email_link": "on", "time_zone": "UTC"})
    northwind.refresh_from_db()
    contoso.refresh_from_db()
    assert northwind.allow_google and not contoso.allow_google


def test_unknown_ids_read_as_404_too(as_alice: Client) -> None:
    for url in (reverse("orgadmin:disable", args=[999999]),
                reverse("orgadmin:set_role", args=[999999]),
                reverse("orgadmin:resend", args=[999999]),
                reverse("orgadmin:revoke", args=[999999])):
        assert as_alice.post(url, {"role": "admin"}).status_code == 404, url


def test_changes_are_post_only(as_alice: Client, bob: User) -> None:
    assert as_alice.get(reverse("orgadmin:disable", args=[bob.pk])).status_code == 405
    assert as_alice.get(reverse("orgadmin:invite")).status_code == 405
    assert User.objects.get(pk=bob.pk).is_active


def test_staff_admin_keeps_working_for_staff(db: None) -> None:
    from tests.factories import make_user
    from tests.passkeys.support import passkey_client

    sam = make_user("sam@cloudsentry.com", staff=True, superuser=True)
    client = passkey_client(sam)
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("orgadmin:members")).status_code == 403


def test_staff_see_invitations_read_only_without_their_secrets(
        db: None, invitation: Invitation) -> None:
    from tests.factories import make_user
    from tests.passkeys.support import passkey_client

    staff = passkey_client(make_user("sam@cloudsentry.com", staff=True, superuser=True))
    listing = staff.get(reverse("admin:orgadmin_invitation_changelist"))
    assert listing.status_code == 200 and "dora@northwind.example" in listing.content.decode()
    page = staff.get(reverse("admin:orgadmin_invitation_change", args=[invitation.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert invitation.token_hash not in body and invitation.link_seed not in body
    assert staff.post(reverse("admin:orgadmin_invitation_delete", args=[invitation.pk]),
                      {"post": "yes"}).status_code == 403
    assert Invitation.objects.filter(pk=invitation.pk).exists()
