from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from portal.accounts.models import Organization, User
from portal.accounts.services import eligibility
from portal.servicedesk import services
from portal.servicedesk.models import Comment, ServiceRequest

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def snapshot() -> tuple[int, ...]:
    return (Organization.objects.count(), User.objects.count(),
            ServiceRequest.objects.count(), Comment.objects.count())


def test_demo_loads_two_organizations_people_and_requests():
    run_demo()
    northwind = Organization.objects.get(name="Northwind Logistics")
    assert not northwind.auto_join
    assert northwind.allow_email_link and northwind.allow_google and northwind.allow_microsoft
    assert [(d.domain, d.verified) for d in northwind.domains.all()] == [
        ("northwind.example", True)]
    assert northwind.google_domains.get().domain == "northwind.example"
    assert northwind.microsoft_tenants.count() == 1
    alice = User.objects.get(email="alice@northwind.example")
    assert alice.full_name == "Alice Moreno"
    assert alice.membership.role == "admin"
    assert not User.objects.get(email="carol@northwind.example").is_active
    sam = User.objects.get(email="sam@cloudsentry.com")
    assert sam.is_staff and sam.is_superuser and sam.organization is None
    statuses = set(northwind.service_requests.values_list("status", flat=True))
    assert 5 <= northwind.service_requests.count() <= 6
    assert len(statuses) >= 4
    assert Comment.objects.filter(from_staff=True, author=sam).exists()
    assert Organization.objects.get(name="Contoso Freight").service_requests.count() == 1


def test_running_demo_twice_changes_nothing():
    run_demo()
    before = snapshot()
    output = run_demo()
    assert "Demo data already loaded" in output
    assert snapshot() == before


def test_demo_organizations_cannot_see_each_others_requests():
    run_demo()
    alice = User.objects.get(email="alice@northwind.example")
    dan = User.objects.get(email="dan@contoso.example")
    assert {sr.organization.name for sr in services.requests_for(alice)} == {
        "Northwind Logistics"}
    assert {sr.organization.name for sr in services.requests_for(dan)} == {"Contoso Freight"}


def test_demo_people_can_sign_in_except_the_turned_off_one():
    run_demo()
    assert eligibility("alice@northwind.example", "email").allowed
    assert eligibility("sam@cloudsentry.com", "email").allowed
    assert eligibility("carol@northwind.example", "email").reason == "user_disabled"
