"""The passkey endpoints and pages without a browser: refusals, limits, no-JavaScript text."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.passkeys import challenges, flows
from portal.passkeys.errors import ChallengeMissing, PasskeyMalformed
from portal.signin.errors import RateLimited
from tests.signin.magic import request_as

pytestmark = pytest.mark.django_db


def test_sign_in_page_says_passkeys_need_javascript_and_keeps_the_email_link() -> None:
    page = Client().get("/signin/").content.decode()
    assert 'id="passkey-signin" class="passkey-signin" hidden' in page
    assert "Signing in with a passkey needs JavaScript" in page
    assert "Email me a sign-in link" in page


def test_passkeys_page_needs_a_sign_in(alice) -> None:
    response = Client().get("/passkeys/")
    assert response.status_code == 302 and response["Location"].startswith("/signin/")
    signed_in = Client()
    signed_in.force_login(alice)
    page = signed_in.get("/passkeys/").content.decode()
    assert "You have no passkeys yet." in page and "Adding a passkey needs JavaScript" in page


def test_sign_in_options_are_discoverable_and_require_user_verification(settings) -> None:
    settings.PORTAL_BASE_URL = "https://portal.cloudsentry.com"
    options = Client().post("/passkeys/signin/options/").json()
    assert options["rpId"] == "portal.cloudsentry.com"
    assert options["userVerification"] == "required"
    assert options.get("allowCredentials", []) == []


def test_registration_options_use_a_random_handle_not_the_email(alice) -> None:
    client = Client()
    client.force_login(alice)
    options = client.post("/passkeys/add/options/").json()
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert alice.email not in json.dumps(options["user"]["id"])
    again = client.post("/passkeys/add/options/").json()
    assert again["user"]["id"] == options["user"]["id"]  # one handle per person
    assert again["challenge"] != options["challenge"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"credential": "x"}',
                                  b'{"credential": {"id": "AAAA"}}', b"{" * 70000])
def test_garbage_answers_a_calm_400_and_spends_the_challenge(body) -> None:
    client = Client()
    client.post("/passkeys/signin/options/")
    response = client.post("/passkeys/signin/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["ok"] is False and response.json()["title"]
    again = client.post("/passkeys/signin/", b'{"credential": {}}',
                        content_type="application/json")
    assert again.json()["title"] == "Please try that again"  # the challenge was used up


def test_refused_sign_in_leaves_an_audit_row() -> None:
    request = request_as(Client(), "/passkeys/signin/", "post")
    challenges.issue(request, "signin")
    with pytest.raises(PasskeyMalformed):
        flows.sign_in(request, '{"id": "AAAA"}')
    with pytest.raises(ChallengeMissing):
        flows.sign_in(request, '{"id": "AAAA"}')
    reasons = list(AuthEvent.objects.filter(tag=Tag.PASSKEY_FAILED).values_list(
        "reason", flat=True).order_by("pk"))
    assert reasons == ["malformed", "challenge_missing"]


def test_passkey_sign_in_attempts_are_limited_per_client_address(settings) -> None:
    settings.SIGNIN_RATE_LIMITS = {**settings.SIGNIN_RATE_LIMITS, "passkey_ip": "3/15m"}
    for _ in range(3):
        with pytest.raises(ChallengeMissing):
            flows.sign_in(request_as(Client(), ip="127.0.0.9"), "{}")
    with pytest.raises(RateLimited):
        flows.sign_in(request_as(Client(), ip="127.0.0.9"), "{}")
    # Another address is counted on its own.
    with pytest.raises(ChallengeMissing):
        flows.sign_in(request_as(Client(), ip="127.0.0.10"), "{}")
    response = Client(REMOTE_ADDR="127.0.0.9").post(
        "/passkeys/signin/", b'{"credential": {}}', content_type="application/json")
    assert response.status_code == 429 and response["Retry-After"]
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_RATE_LIMITED).count() == 2


def test_someone_elses_passkey_cannot_be_renamed_or_removed(alice, northwind) -> None:
    from portal.passkeys.models import Passkey
    from tests.factories import make_user

    bob = make_user("bob@northwind.example", northwind)
    theirs = Passkey.objects.create(user=bob, credential_id="Ym9i", public_key=b"k", name="Bob's")
    client = Client()
    client.force_login(alice)
    assert client.post(f"/passkeys/{theirs.pk}/rename/", {"name": "Mine"}).status_code == 400
    client.post(f"/passkeys/{theirs.pk}/remove/")
    theirs.refresh_from_db()
    assert theirs.name == "Bob's"
