"""The local demo providers (tests/support/oidc/demo.py) match the portal and its demo data.

docs/oidc.md ("Try it locally") promises an operator that these two providers, configured
by the documented variables alone, sign Alice in and refuse the rest for the reasons it
lists. These tests hold the demo to that: discovery answers, the redirect URIs are the
portal's own, the tenant is the one ``portal demo`` registers, the nOAuth attacker comes
from another tenant, and each account ends as documented against the real demo data.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.config import env
from portal.devtools.management.commands import demo as demo_command
from tests.conftest import require
from tests.support.oidc import demo
from tests.support.oidc.harness import follow_to_callback, free_port, installed, path_of

PORTAL = "http://testserver"  # the Django test client's origin
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# What the portal records for each demo login: "" for a sign-in, else the refusal reason.
# docs/oidc.md lists the same outcomes in words.
EXPECTED = {
    ("google", "alice"): "",
    ("google", "bob"): "",
    ("google", "carol"): "user_disabled",
    ("google", "unverified"): "email_not_verified",
    ("google", "consumer"): "google_not_workspace",
    ("google", "gmail"): "unknown_address",
    ("google", "fabrikam"): "unknown_address",
    ("google", "intruder"): "workspace_not_pinned",
    ("google", "blocked"): "consent_blocked",
    ("microsoft", "alice"): "",
    ("microsoft", "bob"): "",
    ("microsoft", "carol"): "user_disabled",
    ("microsoft", "attacker"): "tenant_not_registered",
    ("microsoft", "consent"): "consent_blocked",
}


@pytest.fixture(scope="module")
def providers() -> Iterator[demo.DemoProviders]:
    require("node and tests/support/oidc/node_modules (npm install --prefix tests/support/oidc)",
            installed())
    with demo.running(google_port=free_port(), microsoft_port=free_port(),
                      portal_base_url=PORTAL) as running:
        yield running


def microsoft_claims(login: str) -> dict[str, Any]:
    return demo.accounts_table(demo.MICROSOFT_DEMO)[login]["claims"]


def test_discovery_documents_answer(providers: demo.DemoProviders) -> None:
    google = requests.get(providers.google.discovery_url, timeout=5).json()
    microsoft = requests.get(providers.microsoft.discovery_url, timeout=5).json()
    assert google["issuer"] == providers.google.base_url
    assert microsoft["issuer"] == providers.microsoft.base_url + "/{tenantid}/v2.0"
    assert "S256" in google["code_challenge_methods_supported"]


def test_redirect_uris_are_the_portal_callbacks(providers: demo.DemoProviders) -> None:
    for provider in (providers.google, providers.microsoft):
        assert provider.redirect_uris == [
            PORTAL + reverse("signin:oidc_callback", args=[provider.shape])]


def test_printed_variables_are_the_documented_ones(providers: demo.DemoProviders) -> None:
    names = {variable.name for variable in env.VARIABLES}
    assert set(providers.environment()) <= names
    config = env.load({**providers.environment(), "PORTAL_DEBUG": "true"})
    assert config.google_discovery_url == providers.google.discovery_url
    assert config.microsoft_client_id == demo.MICROSOFT_CLIENT_ID
    text = demo.instructions(providers, PORTAL)
    assert f"export GOOGLE_DISCOVERY_URL={providers.google.discovery_url}" in text
    assert f"export PORTAL_BASE_URL={PORTAL}" in text  # not the default, so it is printed


def test_demo_tenant_is_the_one_portal_demo_registers() -> None:
    assert demo.NORTHWIND_TENANT_ID == demo_command.NORTHWIND_TENANT_ID
    assert microsoft_claims("alice")["tid"] == demo_command.NORTHWIND_TENANT_ID


def test_noauth_attacker_claims_alices_address_from_another_tenant() -> None:
    attacker = microsoft_claims("attacker")
    assert attacker["email"] == microsoft_claims("alice")["email"]
    assert attacker["tid"] != demo_command.NORTHWIND_TENANT_ID
    assert GUID.match(attacker["tid"])  # a well-formed tenant, refused for being unregistered


def test_every_demo_account_has_a_checked_outcome() -> None:
    listed = {("google", a.login) for a in demo.GOOGLE_DEMO}
    listed |= {("microsoft", a.login) for a in demo.MICROSOFT_DEMO}
    assert listed == set(EXPECTED)


@pytest.mark.django_db
def test_demo_accounts_end_as_documented(providers: demo.DemoProviders, settings: Any) -> None:
    call_command("demo", stdout=io.StringIO())
    cache.clear()  # discovery and keys of another test's providers must not be reused
    settings.PORTAL_BASE_URL = PORTAL
    config = env.load({**providers.environment(), "PORTAL_DEBUG": "true"})
    settings.OIDC_PROVIDERS = {
        "google": {"client_id": config.google_client_id,
                   "client_secret": config.google_client_secret,
                   "discovery_url": config.google_discovery_url},
        "microsoft": {"client_id": config.microsoft_client_id,
                      "client_secret": config.microsoft_client_secret,
                      "discovery_url": config.microsoft_discovery_url}}
    seen: dict[tuple[str, str], str] = {}
    for provider, login in EXPECTED:
        browser = Client()
        began = browser.get(reverse("signin:oidc_start", args=[provider]))
        callback = follow_to_callback(began["Location"], login, portal_base=PORTAL)
        browser.get(path_of(callback))
        event = AuthEvent.objects.latest("id")
        assert event.tag in (Tag.OIDC_SUCCEEDED, Tag.OIDC_FAILED)
        seen[(provider, login)] = event.reason if event.tag == Tag.OIDC_FAILED else ""
    assert seen == EXPECTED
