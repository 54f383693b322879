"""Sign in with Google / Microsoft in Debian's Chromium: real redirects, the provider's page.

Screenshots land in test-results/<test>/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session

from portal.accounts.models import GoogleWorkspaceDomain, MicrosoftTenant, Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin.models import ExternalIdentity
from portal.signin.oidc.pending import cookie_name
from tests.factories import make_org, make_user
from tests.signin.conftest import NORTHWIND_TENANT, Providers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def northwind(oidc: Providers) -> Organization:
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org, full_name="Alice Moreno")
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")
    MicrosoftTenant.objects.create(organization=org, tenant_id=NORTHWIND_TENANT)
    return org


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    yield context.new_page()
    context.close()


def sign_in_at_provider(page: Any, live_server: Any, provider: str, login: str | None,
                        artifacts: Path) -> None:
    """From a signed-out page that needs sign-in, press the provider's button and log in."""
    page.goto(f"{live_server.url}/requests/")
    assert "/signin/" in page.url
    page.get_by_role("button", name=f"Sign in with {provider}").click()
    page.get_by_label("Account").wait_for()
    assert page.url.startswith("http://127.0.0.1:")  # at the provider, not the portal
    page.screenshot(path=str(artifacts / f"{provider.lower()}-login.png"), full_page=True)
    if login is None:
        page.get_by_role("button", name="Cancel").click()
    else:
        page.get_by_label("Account").fill(login)
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/**")


def refusal_on_sign_in_page(page: Any, live_server: Any, artifacts: Path, name: str) -> str:
    assert page.url.startswith(f"{live_server.url}/signin/")
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    # The explanation, and the email-link way in right beside it.
    assert page.get_by_role("button", name="Email me a sign-in link").is_visible()
    return str(page.locator(".message-error").inner_text())


def test_google_sign_in_journey(page: Any, live_server: Any, northwind: Organization,
                                artifacts: Path) -> None:
    page.goto(f"{live_server.url}/signin/")
    page.get_by_role("button", name="Sign in with Google").click()
    page.get_by_label("Account").wait_for()
    # At the provider, the portal has given this browser the pending sign-in and nothing
    # else: no session, and no session row on the server.
    portal_cookies = [c for c in page.context.cookies()
                      if c["domain"] == urlsplit(live_server.url).hostname
                      and c["name"] in (cookie_name(), settings.SESSION_COOKIE_NAME)]
    assert [(c["name"], c["path"], c["httpOnly"], c["sameSite"]) for c in portal_cookies] == [
        (cookie_name(), "/signin/oidc/", True, "Lax")]
    assert not Session.objects.exists()
    page.get_by_label("Account").fill("alice")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("button", name="Sign out").is_visible()
    assert cookie_name() not in {c["name"] for c in page.context.cookies()}

    page.context.clear_cookies()
    sign_in_at_provider(page, live_server, "Google", "alice", artifacts)
    assert page.url == f"{live_server.url}/requests/"
    assert page.get_by_role("button", name="Sign out").is_visible()
    page.screenshot(path=str(artifacts / "signed-in.png"), full_page=True)
    alice = User.objects.get(email="alice@northwind.example")
    assert ExternalIdentity.objects.get(user=alice).provider == "google"


def test_a_workspace_northwind_did_not_pin_is_refused_for_alices_address(
        page: Any, live_server: Any, northwind: Organization, artifacts: Path) -> None:
    sign_in_at_provider(page, live_server, "Google", "intruder", artifacts)
    text = refusal_on_sign_in_page(page, live_server, artifacts, "workspace-not-pinned")
    assert "Google Workspace your organization has not registered" in text
    assert not page.get_by_role("button", name="Sign out").is_visible()
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "workspace_not_pinned"
    assert not ExternalIdentity.objects.exists()


def test_microsoft_sign_in_journey(page: Any, live_server: Any, northwind: Organization,
                                   artifacts: Path) -> None:
    sign_in_at_provider(page, live_server, "Microsoft", "alice", artifacts)
    assert page.url == f"{live_server.url}/requests/"
    assert page.get_by_role("button", name="Sign out").is_visible()
    identity = ExternalIdentity.objects.get(user__email="alice@northwind.example")
    assert identity.subject == f"{NORTHWIND_TENANT}:oid-alice"


def test_cancelling_at_google_returns_to_sign_in_with_an_explanation(
        page: Any, live_server: Any, northwind: Organization, artifacts: Path) -> None:
    sign_in_at_provider(page, live_server, "Google", None, artifacts)
    text = refusal_on_sign_in_page(page, live_server, artifacts, "cancelled")
    assert text.startswith("Signing in with Google was cancelled.")
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "cancelled"


def test_microsoft_consent_blocked_by_it_policy_is_explained(
        page: Any, live_server: Any, northwind: Organization, artifacts: Path) -> None:
    sign_in_at_provider(page, live_server, "Microsoft", "consent", artifacts)
    text = refusal_on_sign_in_page(page, live_server, artifacts, "consent-blocked")
    assert "IT policy" in text


def test_noauth_email_claim_from_an_unregistered_tenant_does_not_sign_in(
        page: Any, live_server: Any, northwind: Organization, artifacts: Path) -> None:
    sign_in_at_provider(page, live_server, "Microsoft", "attacker", artifacts)
    text = refusal_on_sign_in_page(page, live_server, artifacts, "noauth-refused")
    assert "not registered" in text
    assert not page.get_by_role("button", name="Sign out").is_visible()
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "tenant_not_registered"


def test_reloading_the_callback_after_signing_in_is_refused(
        page: Any, live_server: Any, northwind: Organization, artifacts: Path) -> None:
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/callback/" in r.url else None)
    sign_in_at_provider(page, live_server, "Google", "alice", artifacts)
    assert len(callbacks) == 1
    page.goto(callbacks[0])
    # Still signed in from the first visit, so the sign-in page forwards home; the
    # explanation travels with it.
    page.screenshot(path=str(artifacts / "replayed.png"), full_page=True)
    assert "already used" in page.locator(".message-error").inner_text()
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "state_mismatch"
    assert AuthEvent.objects.filter(tag=Tag.OIDC_SUCCEEDED).count() == 1


def test_a_callback_url_opened_in_another_browser_is_refused(
        browser: Any, page: Any, live_server: Any, northwind: Organization,
        artifacts: Path) -> None:
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/callback/" in r.url else None)
    sign_in_at_provider(page, live_server, "Microsoft", "alice", artifacts)
    other = browser.new_context()
    try:
        stranger = other.new_page()
        stranger.goto(callbacks[0])
        text = refusal_on_sign_in_page(stranger, live_server, artifacts, "other-browser")
        assert "started in another browser" in text
    finally:
        other.close()
