from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from portal.accounts.models import MicrosoftTenant, Organization, OrganizationDomain, User
from portal.core.clock import now
from portal.signin.models import UserSession
from tests.accounts.conftest import client_for
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


def management(prefix: str, total: int = 0, initial: int = 0) -> dict[str, str]:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def org_post(name: str = "Fabrikam", **extra: str) -> dict[str, str]:
    data = {"name": name, "is_active": "on", "allow_email_link": "on", "allow_google": "on",
            "allow_microsoft": "on", **management("domains"), **management("google_domains"),
            **management("microsoft_tenants"), **management("memberships")}
    data.update(extra)
    return data


def user_post(email: str, **extra: str) -> dict[str, str]:
    return {"email": email, "full_name": "", "is_active": "on", **management("membership"),
            **extra}


# --- getting in -------------------------------------------------------------------------

def test_admin_login_sends_people_to_the_portal_sign_in_with_next_kept(client):
    response = client.get(reverse("admin:login") + "?next=/admin/audit/authevent/")
    location = urlsplit(response["Location"])
    assert response.status_code == 302
    assert location.path == reverse("signin:start")
    assert parse_qs(location.query)["next"] == ["/admin/audit/authevent/"]


def test_admin_login_never_passes_on_an_offsite_next(client):
    response = client.get(reverse("admin:login") + "?next=//evil.example/")
    assert parse_qs(urlsplit(response["Location"]).query)["next"] == [reverse("admin:index")]


def test_admin_login_shows_no_password_form(client):
    response = client.get(reverse("admin:login"), follow=False)
    assert response.status_code == 302
    assert client.post(reverse("admin:login"),
                       {"username": "sam@cloudsentry.com", "password": "x"}).status_code == 302


def test_signed_out_visit_to_the_admin_ends_at_the_portal_sign_in(client):
    response = client.get(reverse("admin:index"), follow=True)
    final_path, _ = response.redirect_chain[-1]
    assert urlsplit(final_path).path == reverse("signin:start")
    assert parse_qs(urlsplit(final_path).query)["next"] == [reverse("admin:index")]


def test_staff_see_the_admin(staff_client):
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Cloud Sentry staff" in response.content.decode()


def test_people_who_are_not_staff_do_not_see_the_admin(northwind):
    alice = make_user("alice@northwind.example", northwind, admin=True)
    client = client_for(alice)
    response = client.get(reverse("admin:index"), follow=True)
    assert response.status_code == 403
    assert "staff only" in response.content.decode()
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302
    assert client.get(reverse("admin:audit_authevent_changelist")).status_code == 302


def test_staff_admin_login_page_forwards_a_signed_in_staff_member(staff_client):
    response = staff_client.get(reverse("admin:login") + "?next=/admin/accounts/user/")
    assert response["Location"] == "/admin/accounts/user/"


def test_admin_has_no_password_change_page(staff_client):
    assert staff_client.get(reverse("admin:password_change")).status_code == 404


def test_the_admin_is_the_portal_site_and_registrations_land_there():
    from django.contrib import admin
    from django.contrib.auth.models import Group

    from portal.accounts.admin import PortalGroupAdmin
    from portal.accounts.site import PortalAdminSite

    assert isinstance(admin.site, PortalAdminSite)
    assert admin.site.is_registered(User) and admin.site.is_registered(Organization)
    assert isinstance(admin.site.get_model_admin(Group), PortalGroupAdmin)


def test_admin_sign_out_uses_the_portal_sign_out(staff_client):
    response = staff_client.post(reverse("admin:logout"))
    assert response["Location"] == reverse("signin:signout")


# --- people -----------------------------------------------------------------------------

def test_user_list_shows_organization_and_sign_in_method(staff_client, northwind):
    alice = make_user("alice@northwind.example", northwind, full_name="Alice Moreno")
    make_user("bob@northwind.example", northwind)
    # The latest "Your sessions" row is the person's last sign-in.
    UserSession.objects.create(user=alice, session_key="older", method="email",
                               created_at=now() - timedelta(days=2),
                               last_seen_at=now() - timedelta(days=2))
    UserSession.objects.create(user=alice, session_key="newer", method="google",
                               created_at=now(), last_seen_at=now())
    page = staff_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "alice@northwind.example" in page and "Northwind Logistics" in page
    assert "(Google)" in page and "(Email link)" not in page
    assert "never" in page  # Bob has not signed in


def test_user_search_finds_by_email(staff_client, northwind):
    make_user("alice@northwind.example", northwind)
    make_user("bob@northwind.example", northwind)
    page = staff_client.get(reverse("admin:accounts_user_changelist") + "?q=bob").content.decode()
    assert "bob@northwind.example" in page and "alice@northwind.example" not in page


def test_user_form_has_no_password_fields(staff_client, northwind):
    alice = make_user("alice@northwind.example", northwind)
    for url in (reverse("admin:accounts_user_add"),
                reverse("admin:accounts_user_change", args=[alice.pk])):
        page = staff_client.get(url).content.decode()
        assert 'name="password' not in page
        assert "password" not in page.lower().replace("no password", "")


def test_staff_add_a_person_with_a_membership(staff_client, northwind):
    data = user_post("  Bob@Northwind.Example ", full_name="Bob Okafor",
                     **management("membership", total=1))
    data.update({"membership-0-organization": str(northwind.pk), "membership-0-role": "member"})
    response = staff_client.post(reverse("admin:accounts_user_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    bob = User.objects.get(email="bob@northwind.example")
    assert bob.organization == northwind
    assert not bob.has_usable_password()


def test_adding_an_address_that_differs_only_in_case_is_a_form_error(staff_client, northwind):
    make_user("alice@northwind.example", northwind)
    response = staff_client.post(reverse("admin:accounts_user_add"),
                                 user_post("ALICE@northwind.example"))
    assert response.status_code == 200
    assert "Someone already uses this email address." in response.content.decode()
    assert User.objects.filter(email__iexact="alice@northwind.example").count() == 1


def test_an_address_with_a_line_break_is_refused(staff_client):
    response = staff_client.post(reverse("admin:accounts_user_add"),
                                 user_post("eve@x.example\r\nBcc: all@x.example"))
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not User.objects.filter(email__startswith="eve").exists()


def test_staff_who_are_not_superusers_cannot_grant_staff_or_superuser(northwind):
    helper = make_user("helper@cloudsentry.com", staff=True)
    helper.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_user", "change_user"]))
    bob = make_user("bob@northwind.example", northwind)
    client = client_for(helper)
    url = reverse("admin:accounts_user_change", args=[bob.pk])
    response = client.post(url, user_post("bob@northwind.example", is_staff="on",
                                          is_superuser="on"))
    assert response.status_code == 302
    bob.refresh_from_db()
    assert not bob.is_staff and not bob.is_superuser


# --- organizations ----------------------------------------------------------------------

def test_organization_page_groups_the_sign_in_policy(staff_client, northwind):
    page = staff_client.get(reverse("admin:accounts_organization_change",
                                    args=[northwind.pk])).content.decode()
    assert "Sign-in policy" in page
    for inline in ("email domains", "google workspace domains", "microsoft tenants", "members"):
        assert inline in page.lower()


def test_staff_add_an_organization_with_a_domain_and_tenant(staff_client):
    data = org_post(**management("domains", total=1), **management("microsoft_tenants", total=1))
    data.update({"domains-0-domain": "Fabrikam.Example", "domains-0-verified": "on",
                 "microsoft_tenants-0-tenant_id": "72F988BF-86F1-41AF-91AB-2D7CD011DB47"})
    response = staff_client.post(reverse("admin:accounts_organization_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    org = Organization.objects.get(name="Fabrikam")
    assert org.domains.get().domain == "fabrikam.example"
    assert org.microsoft_tenants.get().tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47"


def test_a_tenant_that_is_not_a_guid_is_refused(staff_client):
    data = org_post(**management("microsoft_tenants", total=1))
    data["microsoft_tenants-0-tenant_id"] = "northwind.onmicrosoft.com"
    response = staff_client.post(reverse("admin:accounts_organization_add"), data)
    assert response.status_code == 200
    assert "tenant) ID" in response.content.decode()
    assert not MicrosoftTenant.objects.exists()


def test_a_domain_already_taken_in_another_case_is_a_form_error(staff_client, northwind):
    data = org_post(**management("domains", total=1))
    data.update({"domains-0-domain": "NORTHWIND.example", "domains-0-verified": "on"})
    response = staff_client.post(reverse("admin:accounts_organization_add"), data)
    assert response.status_code == 200
    assert "Another organization already has this domain." in response.content.decode()
    assert OrganizationDomain.objects.count() == 1


def test_a_domain_with_a_scheme_or_at_sign_is_refused(staff_client):
    data = org_post(**management("domains", total=1))
    data.update({"domains-0-domain": "https://fabrikam.example", "domains-0-verified": "on"})
    response = staff_client.post(reverse("admin:accounts_organization_add"), data)
    assert response.status_code == 200
    assert "Enter a domain name like" in response.content.decode()


def test_membership_admin_lists_members(staff_client, northwind):
    make_user("alice@northwind.example", northwind, admin=True)
    page = staff_client.get(reverse("admin:accounts_membership_changelist")).content.decode()
    assert "alice@northwind.example" in page and "Organization admin" in page


def test_organization_list_shows_each(staff_client):
    make_org("Contoso Freight", ["contoso.example"])
    page = staff_client.get(reverse("admin:accounts_organization_changelist")).content.decode()
    assert "Contoso Freight" in page
