"""The help center's article for organization admins states the configured numbers."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
URL = "/help/running-your-organization/"


def test_the_article_states_the_invitation_lifetime(settings: Any) -> None:
    settings.INVITATION_TTL_SECONDS = 3 * 86400
    page = Client().get(URL).content.decode()
    assert "Running your organization" in page
    assert "for <strong>" not in page and "for 3 days" in page
    assert "Send the invitation" in page


def test_the_article_names_only_configured_providers(settings: Any) -> None:
    settings.OIDC_PROVIDERS = {
        "google": {"client_id": "", "client_secret": "", "discovery_url": "x"},
        "microsoft": {"client_id": "m", "client_secret": "s",
                      "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}
    page = Client().get(URL).content.decode()
    assert "Sign in with Microsoft" in page and "Google" not in page
