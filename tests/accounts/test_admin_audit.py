"""Every admin change of an address, a flag, a membership or a sign-in policy is audited.

Each row names the staff member who made the change (``actor``) and what changed, as
``{"field": [before, after]}``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from tests.accounts.test_admin import management, org_post, user_post
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


def only(tag: Tag) -> AuthEvent:
    return AuthEvent.objects.get(tag=tag)


def changes_of(event: AuthEvent) -> dict[str, Any]:
    return dict(event.detail["changes"])


@pytest.fixture
def bob(northwind: Organization) -> User:
    return make_user("bob@northwind.example", northwind)


def test_address_and_flag_changes_name_the_staff_member_and_before_after(
        staff_client: Client, sam: User, bob: User) -> None:
    data = user_post("bob.ng@northwind.example")
    del data["is_active"]
    response = staff_client.post(reverse("admin:accounts_user_change", args=[bob.pk]), data)
    assert response.status_code == 302
    event = only(Tag.ADMIN_USER_CHANGED)
    assert (event.actor, event.actor_email, event.user) == (sam, "sam@cloudsentry.com", bob)
    assert event.organization is not None and event.organization.name == "Northwind Logistics"
    assert changes_of(event) == {"email": ["bob@northwind.example", "bob.ng@northwind.example"],
                                 "is_active": [True, False]}


def test_staff_grants_and_groups_are_audited(staff_client: Client, sam: User) -> None:
    crew = Group.objects.create(name="Service desk")
    helper = make_user("helper@cloudsentry.com")
    response = staff_client.post(reverse("admin:accounts_user_change", args=[helper.pk]),
                                 user_post("helper@cloudsentry.com", is_staff="on",
                                           groups=str(crew.pk)))
    assert response.status_code == 302
    assert changes_of(only(Tag.ADMIN_USER_CHANGED)) == {"is_staff": [False, True],
                                                        "groups": [[], ["Service desk"]]}


def test_a_save_that_changes_nothing_audited_writes_no_row(staff_client: Client,
                                                           bob: User) -> None:
    staff_client.post(reverse("admin:accounts_user_change", args=[bob.pk]), user_post(
        "bob@northwind.example", full_name="Bob Ng"))
    assert not AuthEvent.objects.filter(tag=Tag.ADMIN_USER_CHANGED).exists()


def test_adding_a_person_with_a_membership_is_audited(staff_client: Client, sam: User,
                                                      northwind: Organization) -> None:
    data = user_post("erin@northwind.example", **management("membership", total=1))
    data.update({"membership-0-organization": str(northwind.pk), "membership-0-role": "admin"})
    assert staff_client.post(reverse("admin:accounts_user_add"), data).status_code == 302
    added = only(Tag.ADMIN_USER_ADDED)
    assert added.actor == sam and changes_of(added)["email"] == [None, "erin@northwind.example"]
    joined = only(Tag.ADMIN_MEMBERSHIP_ADDED)
    assert joined.actor == sam and joined.email == "erin@northwind.example"
    assert changes_of(joined) == {"user": [None, "erin@northwind.example"],
                                  "organization": [None, "Northwind Logistics"],
                                  "role": [None, "admin"]}


def test_moving_and_removing_a_membership_are_audited(staff_client: Client, sam: User,
                                                      bob: User) -> None:
    contoso = make_org("Contoso Freight", ["contoso.example"])
    membership = bob.membership
    response = staff_client.post(reverse("admin:accounts_membership_change",
                                         args=[membership.pk]),
                                 {"user": str(bob.pk), "organization": str(contoso.pk),
                                  "role": "member"})
    assert response.status_code == 302
    moved = only(Tag.ADMIN_MEMBERSHIP_CHANGED)
    assert (moved.actor, moved.user) == (sam, bob)
    assert changes_of(moved) == {"organization": ["Northwind Logistics", "Contoso Freight"]}

    data = org_post("Contoso Freight", **management("memberships", total=1, initial=1))
    data.update({"memberships-0-id": str(membership.pk),
                 "memberships-0-organization": str(contoso.pk),
                 "memberships-0-user": str(bob.pk), "memberships-0-role": "member",
                 "memberships-0-DELETE": "on"})
    response = staff_client.post(reverse("admin:accounts_organization_change",
                                         args=[contoso.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    removed = only(Tag.ADMIN_MEMBERSHIP_REMOVED)
    assert (removed.actor, removed.user, removed.organization) == (sam, bob, contoso)
    assert changes_of(removed)["organization"] == ["Contoso Freight", None]


def test_sign_in_policy_and_domain_changes_are_audited(staff_client: Client, sam: User,
                                                       northwind: Organization) -> None:
    domain = northwind.domains.get()
    data = org_post("Northwind Logistics", **management("domains", total=2, initial=1))
    del data["allow_google"]
    data.update({"domains-0-id": str(domain.pk), "domains-0-organization": str(northwind.pk),
                 "domains-0-domain": "northwind.example", "domains-0-verified": "on",
                 "domains-1-domain": "northwind-logistics.example", "auto_join": "on"})
    response = staff_client.post(reverse("admin:accounts_organization_change",
                                         args=[northwind.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = only(Tag.ADMIN_ORGANIZATION_CHANGED)
    assert (event.actor, event.organization) == (sam, northwind)
    assert changes_of(event) == {
        "allow_google": [True, False], "auto_join": [False, True],
        "email_domains": [["northwind.example (verified)"],
                          ["northwind-logistics.example", "northwind.example (verified)"]]}


def test_turning_an_organization_off_is_audited(staff_client: Client, sam: User,
                                                northwind: Organization) -> None:
    data = org_post("Northwind Logistics")
    del data["is_active"]
    staff_client.post(reverse("admin:accounts_organization_change", args=[northwind.pk]), data)
    assert changes_of(only(Tag.ADMIN_ORGANIZATION_CHANGED)) == {"is_active": [True, False]}


def test_deleting_a_person_is_audited_and_the_row_outlives_them(staff_client: Client,
                                                                sam: User, bob: User) -> None:
    response = staff_client.post(reverse("admin:accounts_user_delete", args=[bob.pk]),
                                 {"post": "yes"})
    assert response.status_code == 302
    event = only(Tag.ADMIN_USER_DELETED)
    assert event.user is None and event.email == "bob@northwind.example"  # the row stays
    assert event.actor == sam and event.detail["organization_name"] == "Northwind Logistics"
    assert changes_of(event)["email"] == ["bob@northwind.example", None]


def test_deleting_an_organization_lists_its_members(staff_client: Client, bob: User,
                                                    northwind: Organization) -> None:
    response = staff_client.post(reverse("admin:accounts_organization_delete",
                                         args=[northwind.pk]), {"post": "yes"})
    assert response.status_code == 302
    event = only(Tag.ADMIN_ORGANIZATION_DELETED)
    assert event.detail["members"] == ["bob@northwind.example"]
    assert User.objects.get(pk=bob.pk).organization is None


def test_the_audit_trail_shows_who_made_each_change(staff_client: Client, bob: User) -> None:
    data = user_post("bob@northwind.example")
    del data["is_active"]
    staff_client.post(reverse("admin:accounts_user_change", args=[bob.pk]), data)
    page = staff_client.get(reverse("admin:audit_authevent_changelist") + "?q=sam@")
    assert "admin:user:changed" in page.content.decode()
