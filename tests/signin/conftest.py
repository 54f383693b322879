"""Fixtures for Sign in with Google / Microsoft: two real OpenID providers for the session.

Both run ``tests/support/oidc/provider.mjs`` (npm ``oidc-provider``; install it with
``npm install --prefix tests/support/oidc``). One issues Google-shaped ID tokens (``hd``,
``email_verified``); one issues Microsoft-shaped tokens (a ``{tenantid}`` issuer template
in discovery, the real tenant in ``iss`` and ``tid``, and an ``oid``). The login form's
"Account" field picks one of the accounts below.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache

from tests.conftest import require
from tests.support.oidc.harness import TestProvider, installed

NORTHWIND_TENANT = "6f1c2e3a-0b4d-4e5f-8a9b-1c2d3e4f5a6b"
CONTOSO_TENANT = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
ATTACKER_TENANT = "0badc0de-dead-4bee-8f00-123456789abc"

_ALICE_GOOGLE = {"email": "alice@northwind.example", "email_verified": True,
                 "hd": "northwind.example", "name": "Alice Moreno"}
_ALICE_MICROSOFT = {"tid": NORTHWIND_TENANT, "oid": "oid-alice",
                    "email": "alice@northwind.example",
                    "preferred_username": "alice@northwind.example", "name": "Alice Moreno"}

GOOGLE_ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"claims": {"sub": "google-alice", **_ALICE_GOOGLE}},
    "bob": {"claims": {"sub": "google-bob", "email": "bob@northwind.example",
                       "email_verified": True, "hd": "northwind.example", "name": "Bob Ng"}},
    "dave": {"claims": {"sub": "google-dave", "email": "dave@northwind.example",
                        "email_verified": True, "hd": "northwind.example"}},
    "unverified": {"claims": {"sub": "google-unverified", "email": "alice@northwind.example",
                              "email_verified": False, "hd": "northwind.example"}},
    # A consumer Google account made with a work address: no hd, Google not authoritative.
    "consumer": {"claims": {"sub": "google-consumer", "email": "alice@northwind.example",
                            "email_verified": True}},
    "fabrikam": {"claims": {"sub": "google-fabrikam", "email": "carol@fabrikam.example",
                            "email_verified": True, "hd": "fabrikam.example"}},
    # A Workspace nobody registered, whose admin gave a user Alice's (verified) address.
    "intruder": {"claims": {"sub": "google-intruder", "email": "alice@northwind.example",
                            "email_verified": True, "hd": "northwind-intruder.example"}},
    "blocked": {"error": {"error": "admin_policy_enforced",
                          "error_description": "The administrator has blocked this app."}},
    "unknown-key": {"claims": {"sub": "google-unknown-key", **_ALICE_GOOGLE},
                    "tamper": {"unknown_key": True}},
    "wrong-aud": {"claims": {"sub": "google-wrong-aud", **_ALICE_GOOGLE},
                  "tamper": {"claims": {"aud": "someone-elses-client"}}},
    "expired": {"claims": {"sub": "google-expired", **_ALICE_GOOGLE},
                "tamper": {"expired": True}},
}

MICROSOFT_ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"claims": {"sub": "ms-pairwise-alice", **_ALICE_MICROSOFT}},
    "erin": {"claims": {"sub": "ms-pairwise-erin", "tid": NORTHWIND_TENANT, "oid": "oid-erin",
                        "preferred_username": "erin@northwind.example", "name": "Erin Ito"}},
    # nOAuth: someone's own tenant, with the victim's address typed into the email claim.
    "attacker": {"claims": {"sub": "ms-pairwise-attacker", "tid": ATTACKER_TENANT,
                            "oid": "oid-attacker", "email": "alice@northwind.example",
                            "preferred_username": "mallory@attacker.example"}},
    # The same trick from a tenant another customer registered.
    "contoso-attacker": {"claims": {"sub": "ms-pairwise-contoso", "tid": CONTOSO_TENANT,
                                    "oid": "oid-contoso", "email": "alice@northwind.example",
                                    "preferred_username": "mallory@contoso.example"}},
    "consent": {"error": {"error": "access_denied", "error_description":
                          "AADSTS65001: The user or administrator has not consented to use "
                          "the application with ID 'portal-microsoft-client'."}},
    "unknown-key": {"claims": {"sub": "ms-unknown-key", **_ALICE_MICROSOFT},
                    "tamper": {"unknown_key": True}},
    "wrong-aud": {"claims": {"sub": "ms-wrong-aud", **_ALICE_MICROSOFT},
                  "tamper": {"claims": {"aud": "someone-elses-client"}}},
    "expired": {"claims": {"sub": "ms-expired", **_ALICE_MICROSOFT},
                "tamper": {"expired": True}},
    # A token whose iss names a tenant other than its tid.
    "wrong-tenant-iss": {"claims": {"sub": "ms-wrong-iss", **_ALICE_MICROSOFT},
                         "tamper": {"claims": {"tid": CONTOSO_TENANT}}},
}


@dataclass
class Providers:
    google: TestProvider
    microsoft: TestProvider

    def settings(self) -> dict[str, dict[str, str]]:
        return {"google": self.google.settings, "microsoft": self.microsoft.settings}


@pytest.fixture(scope="session")
def oidc_servers(live_server: Any) -> Iterator[Providers]:
    """Start both test providers once per session; stop them at the end."""
    require("node and tests/support/oidc/node_modules (npm install --prefix tests/support/oidc)",
            installed())
    callback = live_server.url + "/signin/oidc/{}/callback/"
    google = TestProvider("google", GOOGLE_ACCOUNTS, [callback.format("google")])
    microsoft = TestProvider("microsoft", MICROSOFT_ACCOUNTS, [callback.format("microsoft")])
    try:
        google.start()
        microsoft.start()
        yield Providers(google, microsoft)
    finally:
        google.stop()
        microsoft.stop()


@pytest.fixture
def oidc(oidc_servers: Providers, live_server: Any, settings: Any) -> Providers:
    """The session's providers, configured in settings, with the live server as base URL.

    The cache is emptied first: the database cache table outlives transactional tests, and
    a test must not depend on discovery or keys an earlier test fetched.
    """
    cache.clear()
    settings.PORTAL_BASE_URL = live_server.url
    settings.OIDC_PROVIDERS = oidc_servers.settings()
    return oidc_servers
