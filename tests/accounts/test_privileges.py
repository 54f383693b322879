"""Staff cannot raise their own privilege: tried as an attacker would, through the admin pages.

The attacker is a staff member who is not a superuser and was given broad admin
permissions (view, add, change and delete people, memberships, organizations and groups).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Membership, Organization, User
from portal.signin.models import SignInRequest
from tests.accounts.conftest import client_for
from tests.accounts.test_admin import management, org_post, user_post
from tests.factories import make_user
from tests.signin.magic import ask, deliver_and_read
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db
ATTACKER_INBOX = "mallory@attacker.example"
REFUSAL = "Only a superuser can change this account"
ALL_ACTIONS = ("view", "add", "change", "delete")


@pytest.fixture
def helper() -> User:
    helper = make_user("helper@cloudsentry.com", staff=True)
    helper.user_permissions.add(*Permission.objects.filter(codename__in=[
        f"{action}_{model}" for action in ALL_ACTIONS
        for model in ("user", "membership", "organization", "group")]))
    return helper


@pytest.fixture
def attacker(helper: User) -> Client:
    return client_for(helper)


def test_email_change_sign_in_superuser_page_chain_fails_at_the_first_step(
        attacker: Client, sam: User, smtp: SMTPServer) -> None:
    page = attacker.get(reverse("admin:accounts_user_change", args=[sam.pk]))
    assert page.status_code == 200  # read-only, and it says why
    assert "Only a superuser can change its address" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()

    # Step 1: point the superuser's address at an inbox the attacker reads.
    response = attacker.post(reverse("admin:accounts_user_change", args=[sam.pk]),
                             user_post(ATTACKER_INBOX, is_staff="on", is_superuser="on"))
    assert response.status_code == 403
    assert REFUSAL in response.content.decode()
    assert "Nothing was changed." in response.content.decode()
    sam.refresh_from_db()
    assert sam.email == "sam@cloudsentry.com"

    # Step 2 finds nothing to use: that inbox belongs to no account, so no link is sent.
    ask(Client(), ATTACKER_INBOX)
    assert deliver_and_read(smtp, count=0) == []
    assert SignInRequest.objects.get(email=ATTACKER_INBOX).decline_reason == "unknown_address"

    # Step 3: the superuser-only pages stay closed to the attacker's own session.
    assert attacker.get(reverse("admin:auth_group_add")).status_code == 403


def test_staff_cannot_change_their_own_account(attacker: Client, helper: User) -> None:
    response = attacker.post(reverse("admin:accounts_user_change", args=[helper.pk]),
                             user_post("helper@cloudsentry.com", is_superuser="on"))
    assert response.status_code == 403
    helper.refresh_from_db()
    assert not helper.is_superuser


def test_staff_cannot_turn_off_or_rename_another_staff_member(attacker: Client) -> None:
    colleague = make_user("colleague@cloudsentry.com", staff=True)
    data = user_post("colleague@cloudsentry.com")
    del data["is_active"]
    response = attacker.post(reverse("admin:accounts_user_change", args=[colleague.pk]), data)
    assert response.status_code == 403
    colleague.refresh_from_db()
    assert colleague.is_active


def test_staff_cannot_delete_a_superuser(attacker: Client, sam: User) -> None:
    url = reverse("admin:accounts_user_delete", args=[sam.pk])
    assert attacker.get(url).status_code == 403
    response = attacker.post(url, {"post": "yes"})
    assert response.status_code == 403 and REFUSAL in response.content.decode()
    # The list's bulk "delete selected" asks the same question about each row.
    bulk = attacker.post(reverse("admin:accounts_user_changelist"), {
        "action": "delete_selected", "_selected_action": [str(sam.pk)], "post": "yes"})
    assert bulk.status_code == 403
    assert User.objects.filter(pk=sam.pk).exists()


def test_staff_cannot_give_a_superuser_a_membership(attacker: Client, sam: User,
                                                    northwind: Organization) -> None:
    # A membership would let the superuser account sign in through the organization's
    # Microsoft tenant, whose directory any of its admins can give sam's address.
    response = attacker.post(reverse("admin:accounts_membership_add"), {
        "user": str(sam.pk), "organization": str(northwind.pk), "role": "member"})
    assert response.status_code == 200
    assert "Only a superuser can change its" in response.content.decode()
    data = org_post("Northwind Logistics", **management("memberships", total=1))
    data.update({"memberships-0-user": str(sam.pk), "memberships-0-role": "member"})
    response = attacker.post(reverse("admin:accounts_organization_change",
                                     args=[northwind.pk]), data)
    assert response.status_code == 200
    assert "Only a superuser can change its" in response.content.decode()
    assert not Membership.objects.filter(user=sam).exists()


def test_staff_cannot_move_or_remove_a_staff_members_membership(
        attacker: Client, northwind: Organization) -> None:
    contractor = make_user("contractor@cloudsentry.com", northwind, staff=True)
    membership = contractor.membership
    url = reverse("admin:accounts_membership_change", args=[membership.pk])
    assert attacker.post(url, {"user": str(contractor.pk), "organization": str(northwind.pk),
                               "role": "admin"}).status_code == 403
    assert attacker.post(reverse("admin:accounts_membership_delete", args=[membership.pk]),
                         {"post": "yes"}).status_code == 403
    data = org_post("Northwind Logistics", **management("memberships", total=1, initial=1))
    data.update({"memberships-0-id": str(membership.pk),
                 "memberships-0-organization": str(northwind.pk),
                 "memberships-0-user": str(contractor.pk), "memberships-0-role": "member",
                 "memberships-0-DELETE": "on"})
    response = attacker.post(reverse("admin:accounts_organization_change",
                                     args=[northwind.pk]), data)
    assert response.status_code == 200
    assert "Only a superuser can change its" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "member" and membership.organization == northwind


def test_only_superusers_add_change_or_delete_groups(attacker: Client, helper: User,
                                                     staff_client: Client) -> None:
    crew = Group.objects.create(name="Service desk")
    helper.groups.add(crew)
    everything = [str(p.pk) for p in Permission.objects.all()]
    url = reverse("admin:auth_group_change", args=[crew.pk])
    assert attacker.post(url, {"name": "Service desk", "permissions": everything}
                         ).status_code == 403
    assert attacker.post(reverse("admin:auth_group_add"), {
        "name": "Root", "permissions": everything}).status_code == 403
    assert attacker.post(reverse("admin:auth_group_delete", args=[crew.pk]),
                         {"post": "yes"}).status_code == 403
    assert not crew.permissions.exists() and not Group.objects.filter(name="Root").exists()
    assert attacker.get(reverse("admin:auth_group_changelist")).status_code == 200  # may look
    # A superuser still manages groups.
    assert staff_client.post(url, {"name": "Service desk", "permissions": everything[:1]}
                             ).status_code == 302
    assert crew.permissions.count() == 1


def test_staff_adding_a_person_cannot_make_them_staff(attacker: Client) -> None:
    response = attacker.post(reverse("admin:accounts_user_add"), user_post(
        ATTACKER_INBOX, is_staff="on", is_superuser="on"))
    assert response.status_code == 302
    created = User.objects.get(email=ATTACKER_INBOX)
    assert not created.is_staff and not created.is_superuser
    assert not created.user_permissions.exists() and not created.groups.exists()


def test_staff_still_look_after_customers(attacker: Client, northwind: Organization) -> None:
    """The rule protects staff accounts only: customer accounts stay staff's to manage."""
    bob = make_user("bob@northwind.example", northwind)
    response = attacker.post(reverse("admin:accounts_user_change", args=[bob.pk]),
                             user_post("bob.ng@northwind.example"))
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.email == "bob.ng@northwind.example"


def test_superusers_change_staff_accounts(staff_client: Client) -> None:
    colleague = make_user("colleague@cloudsentry.com", staff=True)
    response = staff_client.post(reverse("admin:accounts_user_change", args=[colleague.pk]),
                                 user_post("colleague@cloudsentry.com", is_staff="on",
                                           is_superuser="on"))
    assert response.status_code == 302
    colleague.refresh_from_db()
    assert colleague.is_superuser
