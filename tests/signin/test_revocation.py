"""The sign-in side of "disable means out": sessions end, and no way in opens again.

The accounts app ends access (``accounts.signals.access_revoked``); ``signin.receivers``
ends the "Your sessions" rows. These tests sign in with Google and Microsoft against the
real test providers, then turn the organization off.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from portal.accounts.models import GoogleWorkspaceDomain, MicrosoftTenant, Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin.models import UserSession
from tests.factories import make_org, make_user
from tests.signin.conftest import NORTHWIND_TENANT, Providers
from tests.support.oidc.harness import follow_to_callback, path_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def northwind() -> Organization:
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org, full_name="Alice Moreno")
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")
    MicrosoftTenant.objects.create(organization=org, tenant_id=NORTHWIND_TENANT)
    return org


def sign_in(client: Client, provider: str) -> str:
    """Sign in as Alice at ``provider``; return where the portal sent the browser."""
    from django.conf import settings

    began = client.get(reverse("signin:oidc_start", args=[provider]))
    callback = follow_to_callback(began["Location"], "alice",
                                  portal_base=settings.PORTAL_BASE_URL)
    return str(client.get(path_of(callback))["Location"])


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_turning_the_organization_off_ends_a_federated_session_and_closes_the_door(
        oidc: Providers, northwind: Organization, provider: str) -> None:
    browser = Client()
    assert sign_in(browser, provider) == "/"
    assert signed_in(browser)
    northwind.is_active = False
    northwind.save()
    assert not signed_in(browser)
    assert UserSession.objects.get().ended_at is not None
    # Signing in again the same way is refused with a sentence that says why.
    again = Client()
    assert sign_in(again, provider).startswith(reverse("signin:start"))
    notes = [str(n.message) for n in get_messages(again.get("/signin/").wsgi_request)]
    assert any("access to this portal is turned off" in note for note in notes), notes
    assert AuthEvent.objects.filter(tag=Tag.OIDC_FAILED).latest("id").reason == (
        "organization_disabled")
    assert not signed_in(again)


def test_signing_in_again_after_re_enabling_is_a_new_session(
        oidc: Providers, northwind: Organization) -> None:
    old = Client()
    sign_in(old, "google")
    alice = User.objects.get(email="alice@northwind.example")
    alice.is_active = False
    alice.save()
    alice.is_active = True
    alice.save()
    assert not signed_in(old)
    fresh = Client()
    assert sign_in(fresh, "microsoft") == "/"
    assert signed_in(fresh) and not signed_in(old)
    assert UserSession.objects.filter(ended_at__isnull=True).count() == 1
