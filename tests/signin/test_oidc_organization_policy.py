"""An organization admin switches Sign in with Microsoft off (``/organization/policy/``):
the button disappears for that organization's people and a federation attempt against the
real test provider is refused; another organization is untouched.

Here rather than in tests/orgadmin so it shares this folder's session-wide OpenID providers.
"""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.clock import now
from tests.factories import make_user
from tests.signin.conftest import Providers
from tests.signin.test_oidc_flow import northwind, refusal, sign_in  # noqa: F401
from tests.signin.test_sessions import sign_in as signed_in_by

pytestmark = pytest.mark.django_db(transaction=True)
POLICY = {"allow_email_link": "on", "allow_google": "on", "allow_passkey": "on",
          "new_sign_in_notices": "on", "time_zone": "UTC"}


def sign_in_again_page(client: Client) -> str:
    """The "Sign in again" page a member meets on a sensitive action after 15 minutes."""
    with time_machine.travel(now() + timedelta(minutes=16), tick=False):
        response = client.post(reverse("signin:end_other_sessions"))
    assert response.status_code == 403
    return html.unescape(response.content.decode())


def test_switching_microsoft_off_hides_the_button_and_refuses_the_sign_in(
        oidc: Providers, northwind: Organization) -> None:  # noqa: F811
    alice = User.objects.get(email="alice@northwind.example")
    member = Client()
    assert sign_in(member, oidc, "microsoft", "alice").status_code == 302
    assert "Sign in with Microsoft" in sign_in_again_page(member)

    admin = make_user("it@northwind.example", northwind, admin=True)
    admin_browser = Client()
    signed_in_by(admin_browser, admin, method="google")
    assert admin_browser.post(reverse("orgadmin:policy"), POLICY).status_code == 302
    changed = AuthEvent.objects.get(tag=Tag.ORGADMIN_POLICY_CHANGED)
    assert (changed.actor, changed.detail["changes"]) == (
        admin, {"allow_microsoft": [True, False]})

    page = sign_in_again_page(member)
    assert "Sign in with Microsoft" not in page and "Sign in with Google" in page
    refused = Client()
    message = refusal(refused, sign_in(refused, oidc, "microsoft", "alice"),
                      "method_not_allowed")
    assert message.startswith("Your organization does not allow Sign in with Microsoft.")
    failed = AuthEvent.objects.filter(tag=Tag.OIDC_FAILED).latest("id")
    assert (failed.user, failed.organization) == (alice, northwind)
    assert Organization.objects.get(name="Contoso").allow_microsoft
    # Google still works for Northwind.
    assert sign_in(Client(), oidc, "google", "alice").status_code == 302
