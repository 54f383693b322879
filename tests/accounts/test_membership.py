"""One organization per person: the database refuses a second, nothing switches silently."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.accounts.models import Membership, Organization, User
from portal.accounts.services import AlreadyMember, add_user, eligibility
from portal.servicedesk.services import create_request, requests_for
from tests.accounts.conftest import client_for
from tests.accounts.test_admin import management, org_post, user_post
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def contoso() -> Organization:
    # Contoso allows no email links: a switch to it would show at once in the policy.
    return make_org("Contoso Freight", ["contoso.example"], allow_email_link=False)


def test_the_database_refuses_a_second_membership(alice: User, contoso: Organization) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=alice, organization=contoso)
    assert Membership.objects.filter(user=alice).count() == 1


def test_a_second_membership_cannot_change_policy_or_scope(alice: User, northwind: Organization,
                                                           contoso: Organization) -> None:
    create_request(northwind, title="Printer on fire", description="Really.")
    create_request(contoso, title="Contoso's secret", description="Nobody else.")
    with pytest.raises(AlreadyMember, match="already belongs to Northwind Logistics"):
        add_user("alice@northwind.example", contoso)
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=alice, organization=contoso)
    alice = User.objects.get(pk=alice.pk)
    assert alice.organization == northwind
    verdict = eligibility("alice@northwind.example", "email")
    assert verdict.allowed and verdict.organization == northwind  # Contoso forbids email
    assert [r.title for r in requests_for(alice)] == ["Printer on fire"]


def test_the_user_page_takes_one_membership_and_says_so(staff_client: Client, alice: User,
                                                        contoso: Organization) -> None:
    data = user_post("alice@northwind.example", **management("membership", total=2, initial=1))
    data.update({"membership-0-id": str(alice.membership.pk), "membership-0-user": str(alice.pk),
                 "membership-0-organization": str(alice.membership.organization_id),
                 "membership-0-role": "member",
                 "membership-1-organization": str(contoso.pk), "membership-1-role": "member"})
    response = staff_client.post(reverse("admin:accounts_user_change", args=[alice.pk]), data)
    assert response.status_code == 200
    assert "Please submit at most 1 form." in response.content.decode()
    assert list(Membership.objects.filter(user=alice).values_list(
        "organization__name", flat=True)) == ["Northwind Logistics"]


def test_membership_admin_says_who_already_belongs_elsewhere(staff_client: Client, alice: User,
                                                             contoso: Organization) -> None:
    response = staff_client.post(reverse("admin:accounts_membership_add"), {
        "user": str(alice.pk), "organization": str(contoso.pk), "role": "member"})
    assert response.status_code == 200
    assert ("alice@northwind.example already belongs to Northwind Logistics."
            in response.content.decode())
    assert Membership.objects.get(user=alice).organization.name == "Northwind Logistics"


def test_organization_page_says_who_already_belongs_elsewhere(staff_client: Client, alice: User,
                                                              contoso: Organization) -> None:
    data = org_post("Contoso Freight", **management("memberships", total=1))
    data.update({"memberships-0-user": str(alice.pk), "memberships-0-role": "member"})
    response = staff_client.post(reverse("admin:accounts_organization_change",
                                         args=[contoso.pk]), data)
    assert response.status_code == 200
    assert ("alice@northwind.example already belongs to Northwind Logistics."
            in response.content.decode())
    assert not contoso.memberships.exists()


def test_the_same_person_twice_on_one_organization_page_is_a_message(
        staff_client: Client, contoso: Organization) -> None:
    dan = make_user("dan@contoso.example")
    data = org_post("Contoso Freight", **management("memberships", total=2))
    data.update({"memberships-0-user": str(dan.pk), "memberships-0-role": "member",
                 "memberships-1-user": str(dan.pk), "memberships-1-role": "admin"})
    response = staff_client.post(reverse("admin:accounts_organization_change",
                                         args=[contoso.pk]), data)
    assert response.status_code == 200
    assert "Please correct the duplicate data for user" in response.content.decode()
    assert not Membership.objects.filter(user=dan).exists()


def test_a_signed_in_request_loads_the_organization_once_with_the_person(alice: User) -> None:
    client = client_for(alice)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    about_membership = [q["sql"] for q in queries.captured_queries
                        if "accounts_membership" in q["sql"] or "accounts_organization" in q["sql"]]
    # One query, the one that loads the signed-in person, joins their membership and its
    # organization; no page reads either again, and none looks them up unordered.
    assert len(about_membership) == 1, about_membership
    assert "accounts_user" in about_membership[0]
    assert "accounts_organization" in about_membership[0]


def test_organization_is_read_from_the_instance_after_the_first_look(alice: User) -> None:
    fresh = User.objects.get(pk=alice.pk)
    with CaptureQueriesContext(connection) as queries:
        first, second = fresh.organization, fresh.organization
    assert first == second and first is not None
    assert len(queries.captured_queries) == 2  # the membership, then its organization
    nobody = make_user("sam@cloudsentry.com", staff=True)
    nobody = User.objects.get(pk=nobody.pk)
    with CaptureQueriesContext(connection) as queries:
        assert nobody.organization is None and nobody.organization is None
    assert len(queries.captured_queries) == 1  # a missing membership is remembered too
