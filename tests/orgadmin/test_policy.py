"""The Sign-in policy page: saving, the rules it keeps, and the sign-in flows obeying it."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Organization, User
from portal.accounts.services import eligibility
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.orgadmin import policy
from portal.signin.models import SignInRequest
from tests.orgadmin.conftest import signed_in
from tests.signin.magic import ask, deliver_and_read
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db
POLICY = reverse("orgadmin:policy")
ALL_ON = {"allow_email_link": "on", "allow_google": "on", "allow_microsoft": "on",
          "allow_passkey": "on", "new_sign_in_notices": "on", "time_zone": "UTC"}
PROVIDERS = {name: {"client_id": name, "client_secret": "s",
                    "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
             for name in ("google", "microsoft")}


@pytest.fixture(autouse=True)
def _providers_offered(settings: Any) -> None:
    """Both providers set up (buttons only; nothing here talks to them)."""
    settings.OIDC_PROVIDERS = PROVIDERS


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def save(client: Client, **changes: str | None) -> Any:
    data = {**ALL_ON, **changes}
    return client.post(POLICY, {k: v for k, v in data.items() if v is not None})


def test_the_page_shows_the_policy_and_domains_read_only(as_alice: Client,
                                                         northwind: Organization) -> None:
    page = page_text(as_alice.get(POLICY))
    assert 'name="allow_microsoft" id="allow_microsoft" checked' in page
    assert '<option value="Europe/London">Europe/London</option>' in page
    assert '<option value="UTC" selected>UTC</option>' in page
    assert 'data-label="Domain">northwind.example<' in page
    assert 'name="domain' not in page  # shown, never edited here


def test_saving_changes_the_organization_and_is_audited(as_alice: Client, alice: User,
                                                        northwind: Organization) -> None:
    response = save(as_alice, allow_google=None, strict_same_browser="on",
                    require_passkeys_for_admins="on", new_sign_in_notices=None,
                    time_zone="Europe/Berlin")
    assert response.status_code == 302
    northwind.refresh_from_db()
    assert not northwind.allow_google and northwind.strict_same_browser
    assert northwind.require_passkeys_for_admins and not northwind.new_sign_in_notices
    assert northwind.time_zone == "Europe/Berlin"
    event = AuthEvent.objects.get(tag=Tag.ORGADMIN_POLICY_CHANGED)
    assert (event.actor, event.organization) == (alice, northwind)
    assert event.detail["changes"] == {
        "allow_google": [True, False], "strict_same_browser": [False, True],
        "require_passkeys_for_admins": [False, True], "new_sign_in_notices": [True, False],
        "time_zone": ["UTC", "Europe/Berlin"]}
    # Saving the same again changes nothing and writes no row.
    save(as_alice, allow_google=None, strict_same_browser="on",
         require_passkeys_for_admins="on", new_sign_in_notices=None, time_zone="Europe/Berlin")
    assert AuthEvent.objects.filter(tag=Tag.ORGADMIN_POLICY_CHANGED).count() == 1


@pytest.mark.parametrize("off", [
    {"allow_email_link": None, "allow_google": None, "allow_microsoft": None,
     "allow_passkey": None},
    {"allow_email_link": None, "allow_google": None, "allow_microsoft": None},
])
def test_at_least_one_way_in_stays_allowed(as_alice: Client, northwind: Organization,
                                           off: dict[str, None]) -> None:
    response = save(signed_in(User.objects.get(email="alice@northwind.example"),
                              method="google"), **off)
    assert response.status_code == 400
    assert "Keep at least one of email sign-in links, Google or Microsoft" in page_text(response)
    assert "Nothing was saved." in page_text(response)
    northwind.refresh_from_db()
    assert northwind.allow_email_link and northwind.allow_google and northwind.allow_microsoft


def test_a_provider_this_portal_does_not_offer_is_no_way_in(alice: User,
                                                             northwind: Organization,
                                                             settings: Any) -> None:
    settings.OIDC_PROVIDERS = {**PROVIDERS, "microsoft": {
        "client_id": "", "client_secret": "", "discovery_url": "x"}}
    admin = signed_in(alice, method="google")
    response = save(admin, allow_email_link=None, allow_google=None)
    assert response.status_code == 400
    assert "count only where this portal offers them" in page_text(response)
    assert save(admin, allow_email_link=None, allow_microsoft=None).status_code == 302


def test_an_unknown_time_zone_is_a_400(as_alice: Client, northwind: Organization) -> None:
    for zone in ("Mars/Olympus", "", "posix/Europe/London", "UTC\n"):
        response = save(as_alice, time_zone=zone + "x" if zone == "UTC\n" else zone)
        assert response.status_code == 400, zone
        assert "Choose your organization's time zone from the list." in page_text(response)
    northwind.refresh_from_db()
    assert northwind.time_zone == "UTC"


def test_turning_off_your_own_way_in_asks_first(as_alice: Client,
                                                northwind: Organization) -> None:
    # as_alice signed in with an email link.
    response = save(as_alice, allow_email_link=None)
    assert response.status_code == 409
    text = page_text(response)
    assert "You are signed in with Email sign-in link, and this change turns it off." in text
    assert "Nothing has been saved yet." in text
    northwind.refresh_from_db()
    assert northwind.allow_email_link
    confirmed = save(as_alice, allow_email_link=None, confirm_own_way="yes")
    assert confirmed.status_code == 302
    northwind.refresh_from_db()
    assert not northwind.allow_email_link
    assert as_alice.get(POLICY).status_code == 200  # still signed in


def test_turning_off_another_way_needs_no_confirmation(alice: User,
                                                       northwind: Organization) -> None:
    response = save(signed_in(alice, method="google"), allow_microsoft=None)
    assert response.status_code == 302
    northwind.refresh_from_db()
    assert not northwind.allow_microsoft


def test_policy_changes_need_a_recent_sign_in(as_alice: Client,
                                              northwind: Organization) -> None:
    import time_machine

    from portal.core.clock import now

    with time_machine.travel(now().timestamp() + 15 * 60, tick=False):
        response = save(as_alice, allow_google=None)
    assert response.status_code == 403
    northwind.refresh_from_db()
    assert northwind.allow_google


def test_zone_list_is_iana_names_only() -> None:
    names = policy.zone_names()
    assert "Europe/London" in names and "UTC" in names
    assert not [n for n in names if n.startswith(("posix/", "right/"))]


# --- the sign-in flows obey the policy ---------------------------------------------------

def test_email_off_means_the_worker_sends_no_link(as_alice: Client, bob: User,
                                                  northwind: Organization,
                                                  smtp: SMTPServer) -> None:
    save(signed_in(User.objects.get(email="alice@northwind.example"), method="google"),
         allow_email_link=None)
    ask(Client(), bob.email)
    deliver_and_read(smtp, count=0)
    assert SignInRequest.objects.get(email=bob.email).decline_reason == "method_not_allowed"
    assert eligibility(bob.email, "google").allowed


def test_the_sign_in_again_page_offers_only_allowed_ways(alice: User, bob: User,
                                                         northwind: Organization,
                                                         settings: Any) -> None:
    import time_machine

    from portal.core.clock import now

    admin = signed_in(alice, method="google")
    save(admin, allow_microsoft=None, allow_passkey=None)
    with time_machine.travel(now().timestamp() + 16 * 60, tick=False):
        again = page_text(admin.post(reverse("orgadmin:disable", args=[bob.pk])))
    assert "Sign in with Google" in again
    assert "Sign in with Microsoft" not in again
    assert "Sign in with a passkey" not in again
    assert "Email me a sign-in link" in again


def test_passkeys_cannot_be_required_of_admins_and_turned_off(as_alice: Client,
                                                              northwind: Organization) -> None:
    response = save(as_alice, allow_passkey=None, require_passkeys_for_admins="on")
    assert response.status_code == 400
    assert "Requiring passkeys for admins needs passkeys allowed" in page_text(response)
    northwind.refresh_from_db()
    assert northwind.allow_passkey and not northwind.require_passkeys_for_admins


def test_required_passkeys_guard_the_admin_pages(alice: User, northwind: Organization,
                                                 settings: Any) -> None:
    from tests.passkeys.support import mark_passkey_session

    northwind.require_passkeys_for_admins = True
    northwind.save()
    by_email = signed_in(alice)
    # No passkey yet: sent to add one.
    assert by_email.get(POLICY)["Location"] == reverse("passkeys:list")
    # A passkey, but this session began with an email link: sent to use it, then back.
    by_passkey = signed_in(alice)
    mark_passkey_session(by_passkey.cookies[settings.SESSION_COOKIE_NAME].value, alice)
    assert by_email.get(POLICY)["Location"] == (
        reverse("passkeys:use") + "?next=%2Forganization%2Fpolicy%2F")
    refused = by_email.post(POLICY, {**ALL_ON, "allow_google": ""})
    assert refused["Location"].startswith(reverse("passkeys:use"))
    northwind.refresh_from_db()
    assert northwind.allow_google
    assert by_passkey.get(POLICY).status_code == 200
