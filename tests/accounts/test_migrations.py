"""Migration 0002: people with several memberships keep the oldest, the rest are audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from portal.accounts.models import Membership, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag

BEFORE = [("accounts", "0001_initial")]


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_the_oldest_membership_and_audits_each_removed_one() -> None:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("accounts")
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Org = old.get_model("accounts", "Organization")
    OldUser = old.get_model("accounts", "User")
    OldMembership = old.get_model("accounts", "Membership")
    northwind = Org.objects.create(name="Northwind Logistics")
    contoso = Org.objects.create(name="Contoso Freight")
    fabrikam = Org.objects.create(name="Fabrikam")
    alice = OldUser.objects.create(email="alice@northwind.example", password="!x")
    bob = OldUser.objects.create(email="bob@northwind.example", password="!x")
    start = timezone.now() - timedelta(days=30)
    OldMembership.objects.create(user=alice, organization=northwind, created_at=start)
    OldMembership.objects.create(user=alice, organization=contoso, role="admin",
                                 created_at=start + timedelta(days=1))
    OldMembership.objects.create(user=alice, organization=fabrikam,
                                 created_at=start + timedelta(days=2))
    OldMembership.objects.create(user=bob, organization=contoso, created_at=start)

    executor = MigrationExecutor(connection)
    executor.migrate(latest)

    assert User.objects.get(email="alice@northwind.example").organization.name == (
        "Northwind Logistics")
    assert Membership.objects.get(user__email="bob@northwind.example").organization.name == (
        "Contoso Freight")
    removed = AuthEvent.objects.filter(tag=Tag.MEMBERSHIP_REMOVED_BY_MIGRATION).order_by("id")
    assert [(e.email, e.detail["removed_organization"], e.detail["removed_role"],
             e.detail["kept_organization"]) for e in removed] == [
        ("alice@northwind.example", "Contoso Freight", "admin", "Northwind Logistics"),
        ("alice@northwind.example", "Fabrikam", "member", "Northwind Logistics")]
    assert Membership.objects.count() == 2
