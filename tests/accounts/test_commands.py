from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from portal.accounts.models import Membership, Organization, User

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_addorg_creates_an_organization_with_verified_domains():
    output = run("addorg", "Fabrikam", "--domain", "Fabrikam.Example", "--auto-join")
    org = Organization.objects.get(name="Fabrikam")
    assert org.auto_join
    assert [(d.domain, d.verified) for d in org.domains.all()] == [("fabrikam.example", True)]
    assert "Created organization Fabrikam" in output


def test_addorg_refuses_a_duplicate_name():
    run("addorg", "Fabrikam")
    with pytest.raises(CommandError, match="already exists"):
        run("addorg", "Fabrikam")


def test_adduser_creates_a_member_without_a_usable_password():
    run("addorg", "Fabrikam", "--domain", "fabrikam.example")
    output = run("adduser", "Kim@Fabrikam.example", "--org", "Fabrikam", "--admin",
                 "--name", "Kim Lee")
    kim = User.objects.get(email="kim@fabrikam.example")
    assert not kim.has_usable_password()
    assert kim.membership.role == Membership.Role.ADMIN
    assert "kim@fabrikam.example can now sign in to Fabrikam" in output


def test_adduser_staff_becomes_superuser_without_an_organization():
    run("adduser", "sam@cloudsentry.com", "--staff")
    sam = User.objects.get(email="sam@cloudsentry.com")
    assert sam.is_staff and sam.is_superuser and sam.organization is None


def test_adduser_needs_an_existing_organization():
    with pytest.raises(CommandError, match="No organization named"):
        run("adduser", "kim@fabrikam.example", "--org", "Nope")


def test_adduser_needs_an_organization_or_staff():
    with pytest.raises(CommandError, match="--org"):
        run("adduser", "kim@fabrikam.example")


def test_adduser_refuses_an_invalid_address():
    run("addorg", "Fabrikam")
    with pytest.raises(CommandError, match="email address"):
        run("adduser", "not-an-address", "--org", "Fabrikam")


def test_adduser_refuses_a_second_organization_and_changes_nothing():
    run("addorg", "Fabrikam", "--domain", "fabrikam.example")
    run("addorg", "Contoso")
    run("adduser", "kim@fabrikam.example", "--org", "Fabrikam")
    with pytest.raises(CommandError, match="already belongs to Fabrikam"):
        run("adduser", "kim@fabrikam.example", "--org", "Contoso")
    kim = User.objects.get(email="kim@fabrikam.example")
    assert kim.organization is not None and kim.organization.name == "Fabrikam"
