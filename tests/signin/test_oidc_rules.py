"""Provider rules through the views, with the network replaced by tokens signed here.

Fast and node-free; the same journeys against real providers are in test_oidc_flow.py.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from portal.accounts.models import GoogleWorkspaceDomain, MicrosoftTenant
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin.models import ExternalIdentity
from portal.signin.oidc import client as oidc_client
from tests.factories import make_org, make_user

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
TENANT = "6f1c2e3a-0b4d-4e5f-8a9b-1c2d3e4f5a6b"
DISCOVERY = {
    "google": {"issuer": "https://accounts.google.com",
               "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
               "token_endpoint": "https://oauth2.googleapis.com/token",
               "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs"},
    "microsoft": {"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                  "authorization_endpoint": "https://login.microsoftonline.com/organizations/"
                                            "oauth2/v2.0/authorize",
                  "token_endpoint": "https://login.microsoftonline.com/organizations/"
                                    "oauth2/v2.0/token",
                  "jwks_uri": "https://login.microsoftonline.com/organizations/discovery/"
                              "v2.0/keys"},
}

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_providers(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Configure both providers; answer discovery, JWKS and the token endpoint locally."""
    settings.PORTAL_BASE_URL = "https://portal.example"
    settings.OIDC_PROVIDERS = {
        name: {"client_id": f"{name}-client", "client_secret": "s",
               "discovery_url": f"https://{name}.example/.well-known/openid-configuration"}
        for name in DISCOVERY}
    issued: dict[str, Any] = {"claims": {}}
    monkeypatch.setattr(oidc_client, "fetch_discovery", lambda p: DISCOVERY[p.name])
    monkeypatch.setattr(oidc_client, "fetch_jwks",
                        lambda p, uri, refresh=False: KeySet([KEY]).as_dict(private=False))

    def exchange(provider: Any, discovery: Any, *, code: str, redirect_uri: str,
                 code_verifier: str) -> dict[str, Any]:
        assert redirect_uri == f"https://portal.example/signin/oidc/{provider.name}/callback/"
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, issued["claims"], KEY)
        return {"access_token": "at", "token_type": "Bearer", "id_token": token}

    monkeypatch.setattr(oidc_client, "exchange_code", exchange)
    return issued


def sign_in(client: Client, issued: dict[str, Any], provider: str, **claims: Any) -> Any:
    began = client.get(reverse("signin:oidc_start", args=[provider]))
    query = parse_qs(urlsplit(began["Location"]).query)
    now = int(time.time())
    issued["claims"] = {"aud": f"{provider}-client", "iat": now, "exp": now + 600,
                        "nonce": query["nonce"][0], **claims}
    return client.get(reverse("signin:oidc_callback", args=[provider]),
                      {"code": "c", "state": query["state"][0]})


def failure_reason() -> str:
    return AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason


def test_google_issuer_alias_links_under_the_canonical_issuer(fake_providers: Any) -> None:
    org = make_org()
    make_user("alice@northwind.example", org)
    response = sign_in(Client(), fake_providers, "google", iss="accounts.google.com",
                       sub="g-1", email="alice@northwind.example", email_verified=True,
                       hd="northwind.example")
    assert response["Location"] == "/"
    assert ExternalIdentity.objects.get().issuer == "https://accounts.google.com"


def test_pinned_workspace_admits_a_member_at_a_secondary_domain(fake_providers: Any) -> None:
    org = make_org("Northwind Logistics", [])
    make_user("alice@northwind-logistics.example", org)
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")
    response = sign_in(Client(), fake_providers, "google", iss="https://accounts.google.com",
                       sub="g-2", email="alice@northwind-logistics.example",
                       email_verified=True, hd="northwind.example")
    assert response["Location"] == "/"


def test_google_hd_of_another_workspace_does_not_match_a_verified_domain(
        fake_providers: Any) -> None:
    """The address's domain is verified, but the account lives in an unpinned Workspace
    whose hd is someone else's: only the verified-domain rule can admit it, and it does,
    because Google only lets a Workspace hold addresses at domains it proved it owns."""
    org = make_org()
    make_user("alice@northwind.example", org)
    response = sign_in(Client(), fake_providers, "google", iss="https://accounts.google.com",
                       sub="g-3", email="alice@northwind.example", email_verified=True,
                       hd="northwind-holdings.example")
    assert response["Location"] == "/"


def test_google_email_verified_must_be_true_not_just_present(fake_providers: Any) -> None:
    org = make_org()
    make_user("alice@northwind.example", org)
    sign_in(Client(), fake_providers, "google", iss="https://accounts.google.com", sub="g-4",
            email="alice@northwind.example", email_verified="false", hd="northwind.example")
    assert failure_reason() == "email_not_verified"


def test_microsoft_token_without_oid_is_refused(fake_providers: Any) -> None:
    org = make_org()
    make_user("alice@northwind.example", org)
    MicrosoftTenant.objects.create(organization=org, tenant_id=TENANT)
    sign_in(Client(), fake_providers, "microsoft",
            iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", tid=TENANT, sub="pairwise",
            email="alice@northwind.example")
    assert failure_reason() == "id_token_malformed"


def test_microsoft_identity_is_keyed_by_tenant_and_object_id(fake_providers: Any) -> None:
    org = make_org()
    make_user("alice@northwind.example", org)
    MicrosoftTenant.objects.create(organization=org, tenant_id=TENANT)
    sign_in(Client(), fake_providers, "microsoft",
            iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", tid=TENANT,
            sub="pairwise-1", oid="oid-1", email="alice@northwind.example")
    identity = ExternalIdentity.objects.get()
    assert (identity.issuer, identity.subject) == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0", f"{TENANT}:oid-1")
    # A new app registration changes the pairwise sub; the link still holds.
    client = Client()
    sign_in(client, fake_providers, "microsoft",
            iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", tid=TENANT,
            sub="pairwise-2", oid="oid-1", email="someone-else@northwind.example")
    assert client.session["_auth_user_id"] == str(identity.user_id)
    assert ExternalIdentity.objects.count() == 1


def test_microsoft_account_without_any_address_is_refused(fake_providers: Any) -> None:
    org = make_org()
    MicrosoftTenant.objects.create(organization=org, tenant_id=TENANT)
    sign_in(Client(), fake_providers, "microsoft",
            iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", tid=TENANT, sub="p",
            oid="oid-9", preferred_username="not-an-address")
    assert failure_reason() == "no_email"


def test_a_provider_error_we_do_not_know_is_a_generic_refusal(fake_providers: Any) -> None:
    client = Client()
    began = client.get(reverse("signin:oidc_start", args=["google"]))
    state = parse_qs(urlsplit(began["Location"]).query)["state"][0]
    response = client.get(reverse("signin:oidc_callback", args=["google"]),
                          {"state": state, "error": "server_error"})
    assert response["Location"] == reverse("signin:start")
    event = AuthEvent.objects.get(tag=Tag.OIDC_FAILED)
    assert (event.reason, event.detail["error"]) == ("provider_error", "server_error")


def test_staff_without_an_organization_are_told_to_use_an_email_link(
        fake_providers: Any) -> None:
    make_user("sam@cloudsentry.com", staff=True)
    client = Client()
    response = sign_in(client, fake_providers, "google", iss="https://accounts.google.com",
                       sub="g-staff", email="sam@cloudsentry.com", email_verified=True,
                       hd="cloudsentry.com")
    assert response["Location"].startswith("/signin/")
    assert failure_reason() == "no_organization"
    page = client.get(response["Location"]).content.decode()
    assert "such as Cloud Sentry staff, sign in with an email link" in page
    assert "No portal account uses" not in page
