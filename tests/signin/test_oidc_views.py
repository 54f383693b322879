"""The OpenID views and the pieces around them: buttons, configuration, outages, timing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
import time_machine
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.messages import get_messages
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from portal.accounts.models import GoogleWorkspaceDomain
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.signin.oidc import client as oidc_client
from portal.signin.oidc.providers import configured_providers, get_provider, offer
from tests.factories import make_org, make_user
from tests.signin.conftest import Providers
from tests.support.oidc.harness import follow_to_callback, free_port, path_of

GOOGLE_ONLY = {"google": {"client_id": "cid", "client_secret": "s",
                          "discovery_url": "https://accounts.example/.well-known/openid-configuration"},
               "microsoft": {"client_id": "", "client_secret": "", "discovery_url": "x"}}
NO_PROVIDERS = {"google": {"client_id": "", "client_secret": "", "discovery_url": "x"},
                "microsoft": {"client_id": "", "client_secret": "", "discovery_url": "x"}}


def messages_of(response: Any) -> list[str]:
    return [str(m.message) for m in get_messages(response.wsgi_request)]


# --- buttons and configuration ----------------------------------------------------------------

def test_only_configured_providers_are_offered(settings: Any) -> None:
    settings.OIDC_PROVIDERS = GOOGLE_ONLY
    assert [p.name for p in configured_providers()] == ["google"]


@pytest.mark.django_db
def test_an_organization_sees_only_the_providers_its_policy_allows(settings: Any) -> None:
    settings.OIDC_PROVIDERS = {**GOOGLE_ONLY, "microsoft": {
        "client_id": "m", "client_secret": "s", "discovery_url": "https://login.example/d"}}
    org = make_org(allow_google=False)
    assert [p.name for p in configured_providers(org)] == ["microsoft"]
    assert [p.name for p in configured_providers()] == ["google", "microsoft"]


def test_buttons_keep_next_and_name_the_provider(settings: Any) -> None:
    settings.OIDC_PROVIDERS = GOOGLE_ONLY
    html = render_to_string("signin/_providers.html",
                            {"providers": configured_providers(), "next": "/requests/7/"})
    assert 'action="/signin/oidc/google/start/"' in html
    assert 'method="get"' in html
    assert '<input type="hidden" name="next" value="/requests/7/">' in html
    assert ">Sign in with Google</button>" in html
    assert "Microsoft" not in html


def test_no_providers_render_nothing() -> None:
    assert render_to_string("signin/_providers.html", {"providers": []}).strip() == ""


@pytest.mark.django_db
def test_sign_in_page_shows_the_configured_buttons(settings: Any) -> None:
    settings.OIDC_PROVIDERS = GOOGLE_ONLY
    page = Client().get(reverse("signin:start"), {"next": "/requests/"}).content.decode()
    assert "Sign in with Google" in page and "Sign in with Microsoft" not in page
    assert "Use your company's Google\n     account, or we'll email you a link" in page
    assert "Microsoft" not in page


# --- pages that never fib ---------------------------------------------------------------------

@pytest.mark.django_db
def test_without_providers_the_sign_in_pages_promise_neither_google_nor_microsoft(
        settings: Any) -> None:
    settings.OIDC_PROVIDERS = NO_PROVIDERS
    client = Client()
    page = client.get(reverse("signin:start")).content.decode()
    assert "We'll email you a link that\n     signs you in." in page
    inbox = client.post(reverse("signin:start"), {"email": "alice@northwind.example"},
                        follow=True).content.decode()
    assert "Check your inbox" in inbox
    for text in (page, inbox):
        assert "Google" not in text and "Microsoft" not in text


@pytest.mark.django_db
def test_check_inbox_names_only_the_configured_provider(settings: Any) -> None:
    settings.OIDC_PROVIDERS = GOOGLE_ONLY
    inbox = Client().post(reverse("signin:start"), {"email": "alice@northwind.example"},
                          follow=True).content.decode()
    assert ("If your company uses Google Workspace, you can sign in with your Google account "
            "instead.") in inbox
    assert "Microsoft" not in inbox


def test_the_offer_names_the_configured_providers_as_a_sentence_does(settings: Any) -> None:
    settings.OIDC_PROVIDERS = NO_PROVIDERS
    assert (bool(offer()), offer().names, offer().methods) == (False, "", "email link")
    settings.OIDC_PROVIDERS = GOOGLE_ONLY
    assert (offer().names, offer().suites, offer().methods) == (
        "Google", "Google Workspace", "email link or Google")
    settings.OIDC_PROVIDERS = {**GOOGLE_ONLY, "microsoft": GOOGLE_ONLY["google"]}
    assert (offer().names, offer().methods) == ("Google or Microsoft",
                                                "email link, Google or Microsoft")


def test_the_admin_names_the_sign_in_app_in_words() -> None:
    assert apps.get_app_config("signin").verbose_name == "Sign-in"


@pytest.mark.django_db
@pytest.mark.parametrize("view", ["signin:oidc_start", "signin:oidc_callback"])
def test_unknown_provider_is_not_found(view: str) -> None:
    assert Client().get(reverse(view, args=["yahoo"])).status_code == 404


@pytest.mark.django_db
def test_unconfigured_provider_is_refused_with_a_sentence(settings: Any) -> None:
    settings.OIDC_PROVIDERS = GOOGLE_ONLY
    response = Client().get(reverse("signin:oidc_start", args=["microsoft"]))
    assert response.status_code == 302 and response["Location"] == reverse("signin:start")
    assert messages_of(response) == [
        "Sign in with Microsoft is not available here. Please use an email link instead."]
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "provider_not_configured"


@pytest.mark.django_db
def test_start_only_answers_get(settings: Any) -> None:
    settings.OIDC_PROVIDERS = GOOGLE_ONLY
    assert Client().post(reverse("signin:oidc_start", args=["google"])).status_code == 405


# --- a provider that does not answer ----------------------------------------------------------

@pytest.mark.django_db
def test_provider_not_answering_is_a_plain_refusal_not_a_500(settings: Any) -> None:
    closed = free_port()  # nothing listens here
    settings.OIDC_PROVIDERS = {**GOOGLE_ONLY, "google": {
        "client_id": "cid", "client_secret": "s",
        "discovery_url": f"http://127.0.0.1:{closed}/.well-known/openid-configuration"}}
    response = Client().get(reverse("signin:oidc_start", args=["google"]))
    assert response.status_code == 302 and response["Location"] == reverse("signin:start")
    assert messages_of(response) == ["Google is not answering right now. Try again in a few "
                                     "minutes, or use an email link instead."]
    event = AuthEvent.objects.get(tag=Tag.OIDC_FAILED)
    assert (event.reason, event.detail["provider"]) == ("provider_unavailable", "google")


@pytest.mark.django_db
def test_plain_http_discovery_off_loopback_is_refused(settings: Any) -> None:
    settings.OIDC_PROVIDERS = {**GOOGLE_ONLY, "google": {
        "client_id": "cid", "client_secret": "s",
        "discovery_url": "http://accounts.example/.well-known/openid-configuration"}}
    response = Client().get(reverse("signin:oidc_start", args=["google"]))
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "provider_unavailable"
    assert response.status_code == 302


def test_every_provider_call_has_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake_get(url: str, **kwargs: Any) -> Any:
        seen.append(kwargs.get("timeout"))
        raise requests.Timeout("slow")

    monkeypatch.setattr(oidc_client.requests, "get", fake_get)
    provider = get_provider("google")
    assert provider is not None
    with pytest.raises(oidc_client.ProviderUnavailable):
        oidc_client.fetch_jwks(provider, "https://accounts.example/jwks", refresh=True)
    assert seen == [oidc_client.TIMEOUT]
    session = oidc_client._session(provider, "https://portal.example/cb")
    assert session.default_timeout == oidc_client.TIMEOUT


# --- against the real test providers --------------------------------------------------------

@pytest.fixture
def alice(oidc: Providers) -> None:
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org)
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")


def _callback(client: Client, provider: str = "google", login: str = "alice") -> str:
    began = client.get(reverse("signin:oidc_start", args=[provider]), {"next": "/requests/"})
    return path_of(follow_to_callback(began["Location"], login,
                                      portal_base=django_settings.PORTAL_BASE_URL))


@pytest.mark.django_db(transaction=True)
def test_provider_calls_happen_outside_any_database_transaction(
        alice: None, monkeypatch: pytest.MonkeyPatch) -> None:
    in_transaction: list[bool] = []
    real_get, real_fetch = oidc_client.requests.get, oidc_client.OAuth2Session.fetch_token

    def spy_get(*args: Any, **kwargs: Any) -> Any:
        in_transaction.append(connection.in_atomic_block)
        return real_get(*args, **kwargs)

    def spy_fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        in_transaction.append(connection.in_atomic_block)
        return real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(oidc_client.requests, "get", spy_get)
    monkeypatch.setattr(oidc_client.OAuth2Session, "fetch_token", spy_fetch)
    client = Client()
    assert client.get(_callback(client))["Location"] == "/requests/"
    assert len(in_transaction) >= 3  # discovery, token endpoint, JWKS
    assert not any(in_transaction)


@pytest.mark.django_db(transaction=True)
def test_discovery_and_keys_are_cached_between_sign_ins(
        alice: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client()
    client.get(_callback(client))
    calls: list[str] = []
    real_get = oidc_client.requests.get

    def spy_get(url: str, **kwargs: Any) -> Any:
        calls.append(url)
        return real_get(url, **kwargs)

    monkeypatch.setattr(oidc_client.requests, "get", spy_get)
    again = Client()
    assert again.get(_callback(again))["Location"] == "/requests/"
    assert calls == []


@pytest.mark.django_db(transaction=True)
def test_token_endpoint_timeout_is_a_plain_refusal(alice: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def timeout(*args: Any, **kwargs: Any) -> Any:
        raise requests.Timeout("read timed out")

    client = Client()
    callback = _callback(client)
    monkeypatch.setattr(oidc_client.OAuth2Session, "fetch_token", timeout)
    response = client.get(callback)
    assert response["Location"].startswith(reverse("signin:start"))
    assert messages_of(response)[0].startswith("Google is not answering right now.")
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "provider_unavailable"


@pytest.mark.django_db(transaction=True)
def test_a_callback_naming_another_issuer_is_refused(alice: None) -> None:
    """RFC 9207: a code from a different provider (mix-up) must not be redeemed here."""
    client = Client()
    callback = _callback(client).replace("iss=http", "iss=https%3A%2F%2Fevil.example%2Fx")
    response = client.get(callback)
    assert response["Location"].startswith(reverse("signin:start"))
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "response_wrong_issuer"


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_left_at_the_provider_too_long_must_start_again(alice: None) -> None:
    client = Client()
    callback = _callback(client)
    with time_machine.travel(now() + timedelta(minutes=11), tick=False):
        response = client.get(callback)
    assert messages_of(response) == ["That sign-in took too long to finish. Please start again."]
    assert AuthEvent.objects.get(tag=Tag.OIDC_FAILED).reason == "sign_in_expired"


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_finished_within_ten_minutes_is_accepted(alice: None) -> None:
    client = Client()
    callback = _callback(client)
    with time_machine.travel(now() + timedelta(minutes=9, seconds=30), tick=False):
        assert client.get(callback)["Location"] == "/requests/"


@pytest.mark.django_db(transaction=True)
def test_several_tabs_can_each_finish_their_own_sign_in(alice: None) -> None:
    client = Client()
    first = _callback(client)
    second = _callback(client)
    assert client.get(second)["Location"] == "/requests/"
    # The first tab's state is still this browser's, so it completes too (and re-signs in).
    assert client.get(first)["Location"] == "/requests/"


def test_every_federation_refusal_has_its_own_sentence_in_the_one_table() -> None:
    """Words live in views/problems.py; a new refusal without a sentence fails here."""
    import inspect

    from portal.signin.oidc import errors
    from portal.signin.views.problems import FEDERATION_MESSAGES, federation_message

    classes = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, errors.FederationError) and cls is not errors.FederationError
               and cls is not errors.ProviderRefused]
    missing = [cls.__name__ for cls in classes if cls not in FEDERATION_MESSAGES]
    assert missing == []
    sentence = federation_message(errors.NotEligible("Google", email="x@y.example"))
    assert "No portal account uses x@y.example." in sentence
    assert "{" not in federation_message(errors.ProviderRefused("Google"))
