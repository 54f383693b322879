"""Sign in with Google / Microsoft against two real OpenID providers (npm oidc-provider).

The portal side runs in Django's test client; ``follow_to_callback`` plays the browser at the
provider (redirects, the login form) with ``requests``. The browser suite
(test_oidc_browser.py) repeats the main journeys in Chromium.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.messages import constants, get_messages
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from portal.accounts.models import (
    GoogleWorkspaceDomain,
    Membership,
    MicrosoftTenant,
    Organization,
    User,
)
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin.flows import oidc as flow
from portal.signin.models import ExternalIdentity, UserSession
from tests.factories import make_org, make_user
from tests.signin.conftest import CONTOSO_TENANT, NORTHWIND_TENANT, Providers
from tests.support.oidc.harness import follow_to_callback, path_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def northwind() -> Organization:
    """Northwind: verified northwind.example, Workspace domain pinned, tenant registered."""
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org, full_name="Alice Moreno")
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")
    MicrosoftTenant.objects.create(organization=org, tenant_id=NORTHWIND_TENANT)
    contoso = make_org("Contoso", ["contoso.example"])
    MicrosoftTenant.objects.create(organization=contoso, tenant_id=CONTOSO_TENANT)
    return org


def start(client: Client, provider: str, next_url: str = "/requests/") -> HttpResponse:
    response = client.get(reverse("signin:oidc_start", args=[provider]), {"next": next_url})
    assert response.status_code == 302, response
    return response


def sign_in(client: Client, oidc: Providers, provider: str, login: str | None, *,
            next_url: str = "/requests/", cancel: bool = False) -> HttpResponse:
    """Press "Sign in with …", log in at the provider as ``login``, return the callback."""
    from django.conf import settings

    began = start(client, provider, next_url)
    callback = follow_to_callback(began["Location"], login, portal_base=settings.PORTAL_BASE_URL,
                                  cancel=cancel)
    return client.get(path_of(callback))


def signed_in_user(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def refusal(client: Client, response: HttpResponse, reason: str) -> str:
    """Assert a refusal: back on the sign-in page, one error sentence, audited, not signed in."""
    assert response.status_code == 302
    assert response["Location"].split("?")[0] == reverse("signin:start")
    notes = list(get_messages(response.wsgi_request))
    assert [n.level for n in notes] == [constants.ERROR]
    event = AuthEvent.objects.filter(tag=Tag.OIDC_FAILED).latest("id")
    assert event.reason == reason
    assert event.outcome == AuthEvent.Outcome.FAILURE
    assert signed_in_user(client) is None
    return str(notes[0].message)


# --- successes ------------------------------------------------------------------------------

def test_google_workspace_member_signs_in_and_lands_on_next(oidc: Providers,
                                                            northwind: Organization) -> None:
    client = Client()
    response = sign_in(client, oidc, "google", "alice")
    assert response.status_code == 302 and response["Location"] == "/requests/"
    alice = User.objects.get(email="alice@northwind.example")
    assert signed_in_user(client) == alice
    identity = ExternalIdentity.objects.get(user=alice)
    assert (identity.provider, identity.issuer, identity.subject) == (
        "google", oidc.google.base_url, "google-alice")
    assert UserSession.objects.get(user=alice).method == "google"
    event = AuthEvent.objects.get(tag=Tag.OIDC_SUCCEEDED)
    assert (event.user, event.organization, event.detail["provider"]) == (alice, northwind,
                                                                          "google")
    assert response["Referrer-Policy"] == "no-referrer"


def test_microsoft_member_of_a_registered_tenant_signs_in(oidc: Providers,
                                                          northwind: Organization) -> None:
    client = Client()
    response = sign_in(client, oidc, "microsoft", "alice", next_url="/help/")
    assert response["Location"] == "/help/"
    alice = User.objects.get(email="alice@northwind.example")
    assert signed_in_user(client) == alice
    identity = ExternalIdentity.objects.get(user=alice)
    # Keyed by tenant + object id, under the tenant's own issuer (decision 0003).
    assert identity.issuer == oidc.microsoft.issuer_for(NORTHWIND_TENANT)
    assert identity.subject == f"{NORTHWIND_TENANT}:oid-alice"
    assert UserSession.objects.get(user=alice).method == "microsoft"


def test_one_account_can_hold_both_providers(oidc: Providers, northwind: Organization) -> None:
    sign_in(Client(), oidc, "google", "alice")
    sign_in(Client(), oidc, "microsoft", "alice")
    alice = User.objects.get(email="alice@northwind.example")
    assert sorted(alice.external_identities.values_list("provider", flat=True)) == [
        "google", "microsoft"]
    assert AuthEvent.objects.filter(tag=Tag.OIDC_SUCCEEDED).count() == 2


def test_a_linked_identity_is_found_by_subject_not_by_email(oidc: Providers,
                                                            northwind: Organization) -> None:
    sign_in(Client(), oidc, "google", "alice")
    alice = User.objects.get(email="alice@northwind.example")
    # The portal address changes, and someone else now holds the old one: the Google
    # account still signs in as the person it was linked to.
    alice.email = "alice.moreno@northwind.example"
    alice.save()
    make_user("alice@northwind.example", northwind)
    client = Client()
    sign_in(client, oidc, "google", "alice")
    assert signed_in_user(client) == alice


def test_auto_join_creates_the_member_at_first_google_sign_in(oidc: Providers) -> None:
    org = make_org("Northwind Logistics", ["northwind.example"], auto_join=True)
    client = Client()
    response = sign_in(client, oidc, "google", "bob")
    assert response["Location"] == "/requests/"
    bob = User.objects.get(email="bob@northwind.example")
    assert Membership.objects.filter(user=bob, organization=org).exists()
    assert signed_in_user(client) == bob
    assert AuthEvent.objects.get(tag=Tag.OIDC_SUCCEEDED).detail["joined"] is True


def test_a_verified_domain_admits_a_workspace_account_without_a_pin(oidc: Providers) -> None:
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org)
    client = Client()
    sign_in(client, oidc, "google", "alice")
    assert signed_in_user(client) is not None


def test_microsoft_account_without_email_uses_its_upn_within_a_registered_tenant(
        oidc: Providers) -> None:
    org = make_org("Northwind Logistics", ["northwind.example"], auto_join=True)
    MicrosoftTenant.objects.create(organization=org, tenant_id=NORTHWIND_TENANT)
    client = Client()
    sign_in(client, oidc, "microsoft", "erin")
    assert signed_in_user(client) == User.objects.get(email="erin@northwind.example")


def session_key(client: Client) -> str | None:
    cookie = client.cookies.get(django_settings.SESSION_COOKIE_NAME)
    return cookie.value if cookie is not None and cookie.value else None


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_signing_in_again_in_one_browser_ends_the_first_session_and_cycles_the_key_once(
        oidc: Providers, northwind: Organization, provider: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real_create = SessionStore.create

    def counting_create(self: SessionStore) -> None:
        real_create(self)
        made.append(str(self.session_key))

    monkeypatch.setattr(SessionStore, "create", counting_create)
    client = Client()
    sign_in(client, oidc, provider, "alice")
    first_key = session_key(client)
    assert first_key is not None and made == [first_key]  # no session at all before it
    first = UserSession.objects.get()

    sign_in(client, oidc, provider, "alice")
    second_key = session_key(client)
    # Exactly one new key for the second sign-in: cycled once, never twice.
    assert made == [first_key, second_key] and second_key != first_key
    first.refresh_from_db()
    assert first.ended_at is not None
    active = UserSession.objects.filter(ended_at__isnull=True)
    assert list(active.values_list("session_key", flat=True)) == [second_key]
    assert list(Session.objects.values_list("session_key", flat=True)) == [second_key]
    assert AuthEvent.objects.filter(tag=Tag.OIDC_SUCCEEDED).count() == 2


def test_linking_and_the_session_commit_together_or_not_at_all(
        oidc: Providers, monkeypatch: pytest.MonkeyPatch) -> None:
    """Auto-join, the identity link and finish_sign_in are one transaction."""
    make_org("Northwind Logistics", ["northwind.example"], auto_join=True)
    real_finish = flow.finish_sign_in

    def finish_then_fail(*args: Any, **kwargs: Any) -> UserSession:
        real_finish(*args, **kwargs)
        raise RuntimeError("the database went away just before commit")

    monkeypatch.setattr(flow, "finish_sign_in", finish_then_fail)
    with pytest.raises(RuntimeError):
        sign_in(Client(), oidc, "google", "bob")
    assert not User.objects.filter(email="bob@northwind.example").exists()
    assert not Membership.objects.exists()
    assert not ExternalIdentity.objects.exists()
    assert not UserSession.objects.exists()
    assert not AuthEvent.objects.filter(tag=Tag.OIDC_SUCCEEDED).exists()


def test_next_is_validated_at_start(oidc: Providers, northwind: Organization) -> None:
    response = sign_in(Client(), oidc, "google", "alice", next_url="//evil.example/steal")
    assert response["Location"] == "/"


# --- the request we send ------------------------------------------------------------------

def test_authorization_request_uses_pkce_s256_state_nonce_and_exact_redirect_uri(
        oidc: Providers, live_server: Any) -> None:
    query = parse_qs(urlsplit(start(Client(), "google")["Location"]).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 43 and len(query["nonce"][0]) >= 43
    assert query["redirect_uri"] == [f"{live_server.url}/signin/oidc/google/callback/"]
    assert "openid" in query["scope"][0].split()


# --- refusals by the provider ---------------------------------------------------------------

def test_cancelling_at_the_provider_is_explained(oidc: Providers, northwind: Organization) -> None:
    client = Client()
    text = refusal(client, sign_in(client, oidc, "google", None, cancel=True), "cancelled")
    assert "cancelled" in text and "email link" in text


def test_google_admin_policy_block_is_explained(oidc: Providers, northwind: Organization) -> None:
    client = Client()
    text = refusal(client, sign_in(client, oidc, "google", "blocked"), "consent_blocked")
    assert "IT policy" in text


def test_microsoft_consent_not_granted_aadsts65001_is_explained(oidc: Providers,
                                                                northwind: Organization) -> None:
    client = Client()
    text = refusal(client, sign_in(client, oidc, "microsoft", "consent"), "consent_blocked")
    assert "IT administrator" in text
    event = AuthEvent.objects.get(tag=Tag.OIDC_FAILED)
    assert event.detail["error_description"].startswith("AADSTS65001")


def test_a_refusal_keeps_where_the_person_was_going(oidc: Providers,
                                                    northwind: Organization) -> None:
    response = sign_in(Client(), oidc, "google", None, cancel=True, next_url="/requests/7/")
    assert response["Location"] == reverse("signin:start") + "?next=%2Frequests%2F7%2F"


# --- refusals by the rules ------------------------------------------------------------------

def test_google_email_not_verified_is_refused(oidc: Providers, northwind: Organization) -> None:
    client = Client()
    text = refusal(client, sign_in(client, oidc, "google", "unverified"), "email_not_verified")
    assert "not verified" in text
    assert not ExternalIdentity.objects.exists()


def test_google_account_without_workspace_domain_is_refused(oidc: Providers,
                                                            northwind: Organization) -> None:
    client = Client()
    refusal(client, sign_in(client, oidc, "google", "consumer"), "google_not_workspace")


def test_google_workspace_pinned_by_another_organization_is_refused(oidc: Providers) -> None:
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org)
    other = make_org("Someone Else", ["else.example"])
    GoogleWorkspaceDomain.objects.create(organization=other, domain="northwind.example")
    client = Client()
    refusal(client, sign_in(client, oidc, "google", "alice"), "organization_mismatch")


def test_a_workspace_the_organization_did_not_pin_cannot_sign_in_as_its_member(
        oidc: Providers, northwind: Organization) -> None:
    """An unregistered Workspace whose token says alice@northwind.example (verified)."""
    client = Client()
    text = refusal(client, sign_in(client, oidc, "google", "intruder"), "workspace_not_pinned")
    assert "Google Workspace your organization has not registered" in text
    event = AuthEvent.objects.get(tag=Tag.OIDC_FAILED)
    assert (event.user, event.organization, event.detail["hd"]) == (
        User.objects.get(email="alice@northwind.example"), northwind,
        "northwind-intruder.example")
    assert not ExternalIdentity.objects.exists()
    assert not UserSession.objects.exists()
    # Alice's own Workspace still signs her in.
    sign_in(client, oidc, "google", "alice")
    assert signed_in_user(client) == User.objects.get(email="alice@northwind.example")


def test_pinning_a_workspace_stops_an_identity_linked_from_another_one(oidc: Providers) -> None:
    # Before Northwind pins anything, its verified domain admits any Workspace's account...
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org)
    sign_in(Client(), oidc, "google", "intruder")
    assert ExternalIdentity.objects.get().subject == "google-intruder"
    # ...and once it pins its own, the linked account of the other Workspace is refused.
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")
    client = Client()
    refusal(client, sign_in(client, oidc, "google", "intruder"), "workspace_not_pinned")


def test_google_workspace_domain_nobody_registered_is_refused(oidc: Providers) -> None:
    # Alice is a member, but neither the hd nor her address's domain is registered.
    org = make_org("Northwind Logistics", [])
    make_user("alice@northwind.example", org)
    client = Client()
    refusal(client, sign_in(client, oidc, "google", "alice"), "domain_not_registered")


def test_unknown_address_is_refused_with_the_address(oidc: Providers,
                                                     northwind: Organization) -> None:
    client = Client()
    text = refusal(client, sign_in(client, oidc, "google", "fabrikam"), "unknown_address")
    assert "carol@fabrikam.example" in text
    assert not User.objects.filter(email="carol@fabrikam.example").exists()


def test_disabled_account_is_refused(oidc: Providers, northwind: Organization) -> None:
    make_user("dave@northwind.example", northwind, active=False)
    client = Client()
    text = refusal(client, sign_in(client, oidc, "google", "dave"), "user_disabled")
    assert "turned off" in text


def test_a_disabled_account_cannot_use_its_linked_identity(oidc: Providers,
                                                           northwind: Organization) -> None:
    sign_in(Client(), oidc, "microsoft", "alice")
    User.objects.filter(email="alice@northwind.example").update(is_active=False)
    client = Client()
    refusal(client, sign_in(client, oidc, "microsoft", "alice"), "user_disabled")


def test_organization_that_disallows_google_refuses_at_callback(oidc: Providers) -> None:
    org = make_org("Northwind Logistics", ["northwind.example"], allow_google=False)
    make_user("alice@northwind.example", org)
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")
    client = Client()
    text = refusal(client, sign_in(client, oidc, "google", "alice"), "method_not_allowed")
    assert text.startswith("Your organization does not allow Sign in with Google")


def test_noauth_unregistered_tenant_claiming_a_customer_address_is_refused(
        oidc: Providers, northwind: Organization) -> None:
    """nOAuth (CVE-2023-36871): the email claim of a stranger's tenant proves nothing."""
    client = Client()
    text = refusal(client, sign_in(client, oidc, "microsoft", "attacker"),
                   "tenant_not_registered")
    assert "not registered" in text
    assert not ExternalIdentity.objects.exists()
    assert not UserSession.objects.exists()


def test_tenant_registered_by_another_customer_cannot_sign_in_as_our_member(
        oidc: Providers, northwind: Organization) -> None:
    client = Client()
    refusal(client, sign_in(client, oidc, "microsoft", "contoso-attacker"),
            "organization_mismatch")
    assert not ExternalIdentity.objects.exists()


def test_unregistering_a_tenant_stops_its_linked_identities(oidc: Providers,
                                                            northwind: Organization) -> None:
    sign_in(Client(), oidc, "microsoft", "alice")
    MicrosoftTenant.objects.filter(tenant_id=NORTHWIND_TENANT).delete()
    client = Client()
    refusal(client, sign_in(client, oidc, "microsoft", "alice"), "tenant_not_registered")


# --- refusals of the token ------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["google", "microsoft"])
@pytest.mark.parametrize(("login", "reason"), [
    ("unknown-key", "id_token_unknown_key"),
    ("wrong-aud", "id_token_wrong_audience"),
    ("expired", "id_token_expired"),
])
def test_tokens_that_fail_validation_are_refused(oidc: Providers, northwind: Organization,
                                                 provider: str, login: str, reason: str) -> None:
    client = Client()
    text = refusal(client, sign_in(client, oidc, provider, login), reason)
    assert "could not verify" in text
    assert not ExternalIdentity.objects.exists()
    if login == "wrong-aud":
        detail = AuthEvent.objects.get(tag=Tag.OIDC_FAILED).detail
        assert "someone-elses-client" in detail["check"]


def test_microsoft_token_whose_issuer_names_another_tenant_is_refused(
        oidc: Providers, northwind: Organization) -> None:
    client = Client()
    refusal(client, sign_in(client, oidc, "microsoft", "wrong-tenant-iss"),
            "id_token_wrong_issuer")


# --- state: bound to this browser, used once --------------------------------------------------

def test_a_replayed_callback_url_is_refused(oidc: Providers, northwind: Organization) -> None:
    from django.conf import settings

    client = Client()
    began = start(client, "google")
    callback = path_of(follow_to_callback(began["Location"], "alice",
                                          portal_base=settings.PORTAL_BASE_URL))
    assert client.get(callback)["Location"] == "/requests/"
    replay = client.get(callback)
    assert replay["Location"] == reverse("signin:start")
    assert AuthEvent.objects.filter(tag=Tag.OIDC_FAILED).get().reason == "state_mismatch"
    assert AuthEvent.objects.filter(tag=Tag.OIDC_SUCCEEDED).count() == 1


def test_a_callback_started_in_another_browser_is_refused(oidc: Providers,
                                                          northwind: Organization) -> None:
    """Login CSRF: an attacker's own code and state pushed into a victim's browser."""
    from django.conf import settings

    attacker = Client()
    callback = follow_to_callback(start(attacker, "google")["Location"], "alice",
                                  portal_base=settings.PORTAL_BASE_URL)
    victim = Client()
    refusal(victim, victim.get(path_of(callback)), "state_mismatch")


def test_a_callback_without_state_is_refused(oidc: Providers, northwind: Organization) -> None:
    client = Client()
    start(client, "google")
    response = client.get(reverse("signin:oidc_callback", args=["google"]), {"code": "abc"})
    refusal(client, response, "state_mismatch")


def test_a_google_state_cannot_finish_at_the_microsoft_callback(oidc: Providers,
                                                                northwind: Organization) -> None:
    client = Client()
    state = parse_qs(urlsplit(start(client, "google")["Location"]).query)["state"][0]
    response = client.get(reverse("signin:oidc_callback", args=["microsoft"]),
                          {"code": "abc", "state": state})
    refusal(client, response, "state_mismatch")
