"""The pending Google / Microsoft sign-in lives in a signed cookie, not on the server.

Against the real test providers (npm oidc-provider) with Django's test client. What the
server-side session used to guarantee must still hold: bound to this browser, single use,
several tabs, too slow refused; and a cookie-less GET of the start URL stores nothing.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from portal.accounts.models import GoogleWorkspaceDomain
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.core.ratelimit import Rate
from portal.signin.models import UserSession
from portal.signin.oidc import pending as pending_module
from portal.signin.oidc.pending import COOKIE_PATH, PENDING_MAX, PENDING_MAX_AGE, cookie_name
from tests.factories import make_org, make_user
from tests.signin.conftest import Providers
from tests.support.oidc.harness import follow_to_callback, path_of

pytestmark = pytest.mark.django_db(transaction=True)

COOKIELESS_STARTS = 1000


@pytest.fixture
def alice(oidc: Providers) -> None:
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user("alice@northwind.example", org)
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")


def start(client: Client, provider: str = "google", next_url: str = "/requests/") -> HttpResponse:
    response = client.get(reverse("signin:oidc_start", args=[provider]), {"next": next_url})
    assert response.status_code == 302, response
    return response


def at_provider(began: HttpResponse, login: str = "alice") -> str:
    """Log in at the provider; return the portal callback path (not requested yet)."""
    return path_of(follow_to_callback(began["Location"], login,
                                      portal_base=django_settings.PORTAL_BASE_URL))


def failure_reason() -> str:
    return str(AuthEvent.objects.filter(tag=Tag.OIDC_FAILED).latest("id").reason)


def row_counts() -> dict[str, int]:
    """Count the rows of every table in the database."""
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            row = cursor.fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


# --- nothing stored until the callback ----------------------------------------------------------

def test_a_thousand_cookieless_starts_store_nothing_on_the_server(alice: None) -> None:
    client = Client()
    start(client)  # discovery is fetched (and cached) once, like on any busy portal
    client.cookies = SimpleCookie()
    sessions_before, rows_before = Session.objects.count(), row_counts()
    for _ in range(COOKIELESS_STARTS):
        response = start(client)
        assert response.cookies[cookie_name()]["path"] == COOKIE_PATH
        assert django_settings.SESSION_COOKIE_NAME not in response.cookies
        client.cookies = SimpleCookie()  # every request arrives without cookies
    assert Session.objects.count() == sessions_before == 0
    assert row_counts() == rows_before


def test_the_normal_flow_still_signs_in_with_only_the_cookie(alice: None) -> None:
    client = Client()
    began = start(client)
    assert set(client.cookies) == {cookie_name()}  # no session cookie before the callback
    response = client.get(at_provider(began))
    assert response["Location"] == "/requests/"
    assert UserSession.objects.get().method == "google"
    # The used sign-in left the cookie with the response (the only one: it is deleted).
    assert response.cookies[cookie_name()]["max-age"] == 0


def test_refusals_at_start_are_audited_at_most_a_bounded_number_of_times_per_ip(
        settings: Any) -> None:
    """An unconfigured provider's start URL, fetched without end, writes a bounded trail."""
    settings.OIDC_PROVIDERS = {"google": {"client_id": "", "client_secret": "",
                                          "discovery_url": ""}}
    limit = Rate.parse(settings.SIGNIN_RATE_LIMITS["oidc_failures_ip"]).limit
    client = Client()
    # One frozen moment, so the test never straddles two counting windows.
    with time_machine.travel(now(), tick=False):
        for _ in range(COOKIELESS_STARTS):
            response = client.get(reverse("signin:oidc_start", args=["google"]))
            assert response.status_code == 302
            client.cookies = SimpleCookie()
    events = list(AuthEvent.objects.filter(tag=Tag.OIDC_FAILED).order_by("id"))
    assert len(events) == limit + 1
    assert {e.reason for e in events} == {"provider_not_configured"}
    assert [e.detail.get("further_failures_unrecorded", False) for e in events[-2:]] == [
        False, True]
    assert Session.objects.count() == 0


def test_refusals_from_another_address_are_still_audited(settings: Any) -> None:
    settings.OIDC_PROVIDERS = {"google": {"client_id": "", "client_secret": "",
                                          "discovery_url": ""}}
    limit = Rate.parse(settings.SIGNIN_RATE_LIMITS["oidc_failures_ip"]).limit
    with time_machine.travel(now(), tick=False):
        for _ in range(limit + 5):
            Client(REMOTE_ADDR="127.0.0.9").get(reverse("signin:oidc_start", args=["google"]))
        Client(REMOTE_ADDR="127.0.0.10").get(reverse("signin:oidc_start", args=["google"]))
    assert AuthEvent.objects.filter(ip="127.0.0.10").count() == 1


# --- the cookie itself --------------------------------------------------------------------------

def test_the_pending_cookie_is_signed_httponly_lax_scoped_and_lives_ten_minutes(
        alice: None) -> None:
    cookie = start(Client()).cookies[cookie_name()]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/signin/oidc/"
    assert cookie["max-age"] == PENDING_MAX_AGE == 600
    # Signed: its content reads back only with the portal's key and this cookie's salt.
    payload = signing.loads(cookie.value, salt=pending_module._COOKIE_SALT)
    assert len(payload) == 1
    with pytest.raises(signing.BadSignature):
        signing.loads(cookie.value, salt="another.salt")


def test_in_production_the_cookie_is_secure_and_named_with_the_secure_prefix(
        alice: None, settings: Any) -> None:
    settings.SESSION_COOKIE_SECURE = True  # what production mode sets
    client = Client()
    began = start(client)
    cookie = began.cookies["__Secure-portal_oidc"]
    assert cookie["secure"] is True and cookie["path"] == "/signin/oidc/"
    assert "portal_oidc" not in began.cookies
    assert client.get(at_provider(began))["Location"] == "/requests/"


def test_the_cookie_name_is_a_setting(alice: None, settings: Any) -> None:
    settings.SIGNIN_OIDC_COOKIE = "acme_sso_pending"
    client = Client()
    began = start(client)
    assert "acme_sso_pending" in began.cookies
    assert client.get(at_provider(began))["Location"] == "/requests/"


def test_a_forged_pending_cookie_is_worth_nothing(alice: None) -> None:
    client = Client()
    began = start(client)
    callback = at_provider(began)
    value = client.cookies[cookie_name()].value
    payload = signing.loads(value, salt=pending_module._COOKIE_SALT)
    # The same content signed with someone else's key, as an attacker without ours would.
    client.cookies[cookie_name()] = signing.dumps(payload, key="not-the-portal-key" * 3,
                                                  salt=pending_module._COOKIE_SALT)
    response = client.get(callback)
    assert response["Location"].startswith(reverse("signin:start"))
    assert failure_reason() == "state_mismatch"
    assert response.cookies[cookie_name()]["max-age"] == 0  # the forged cookie is dropped
    assert not UserSession.objects.exists()


# --- single use ---------------------------------------------------------------------------------

def test_a_replayed_callback_with_a_copy_of_the_old_cookie_finds_nothing(alice: None) -> None:
    """A copy of the cookie taken before the callback is no second ticket."""
    client = Client()
    callback = at_provider(start(client))
    copied = client.cookies[cookie_name()].value
    assert client.get(callback)["Location"] == "/requests/"
    thief = Client()
    thief.cookies[cookie_name()] = copied
    response = thief.get(callback)
    assert response["Location"].startswith(reverse("signin:start"))
    event = AuthEvent.objects.get(tag=Tag.OIDC_FAILED)
    assert (event.reason, event.detail.get("replayed")) == ("state_mismatch", True)
    assert UserSession.objects.count() == 1


def test_the_provider_refuses_a_code_it_already_redeemed(alice: None) -> None:
    """The provider's single-use code is a second lock behind our single-use state."""
    client = Client()
    callback = at_provider(start(client))
    copied = client.cookies[cookie_name()].value
    assert client.get(callback)["Location"] == "/requests/"
    cache.clear()  # as if the portal had forgotten the state was used
    thief = Client()
    thief.cookies[cookie_name()] = copied
    response = thief.get(callback)
    assert response["Location"].startswith(reverse("signin:start"))
    assert failure_reason() == "code_rejected"


# --- several tabs -------------------------------------------------------------------------------

def test_the_newest_few_tabs_are_kept_and_the_oldest_pushed_out(alice: None) -> None:
    client = Client()
    tabs = [start(client) for _ in range(PENDING_MAX + 1)]
    payload = signing.loads(client.cookies[cookie_name()].value,
                            salt=pending_module._COOKIE_SALT)
    assert len(payload) == PENDING_MAX
    oldest, newest = at_provider(tabs[0]), at_provider(tabs[-1])
    assert client.get(newest)["Location"] == "/requests/"
    assert client.get(oldest)["Location"].startswith(reverse("signin:start"))
    assert failure_reason() == "state_mismatch"


def test_long_next_paths_keep_fewer_tabs_rather_than_an_oversized_cookie(alice: None) -> None:
    client = Client()
    for _ in range(PENDING_MAX):
        # Random, so that compression cannot hide the length.
        long_next = "/requests/?q=" + secrets.token_urlsafe(1400)
        began = start(client, next_url=long_next)
    # Browsers drop a cookie past 4096 bytes: the portal stays under it by keeping fewer tabs.
    assert len(client.cookies[cookie_name()].OutputString()) < 4000
    assert client.get(at_provider(began))["Location"] == long_next


# --- too slow -----------------------------------------------------------------------------------

def test_a_return_after_the_cookie_expired_is_told_it_took_too_long(alice: None) -> None:
    client = Client()
    callback = at_provider(start(client))
    del client.cookies[cookie_name()]  # what the browser does after its ten minutes
    with time_machine.travel(now() + timedelta(minutes=11), tick=False):
        response = client.get(callback)
    assert response["Location"].startswith(reverse("signin:start"))
    assert failure_reason() == "sign_in_expired"


def test_a_fresh_state_without_the_cookie_is_another_browser_not_a_slow_one(
        alice: None) -> None:
    client = Client()
    callback = at_provider(start(client))
    Client().get(callback)
    assert failure_reason() == "state_mismatch"


def test_a_state_the_portal_never_signed_is_never_called_slow(alice: None) -> None:
    client = Client()
    began = start(client)
    state = parse_qs(urlsplit(began["Location"]).query)["state"][0]
    token, stamp, _signature = state.split(".")
    forged = f"{token}.{int(stamp) - 3600}.AAAA"
    Client().get(reverse("signin:oidc_callback", args=["google"]),
                 {"code": "c", "state": forged})
    assert failure_reason() == "state_mismatch"


def test_an_unreachable_cache_refuses_the_callback_calmly_never_a_500(alice: None,
                                                                       settings: Any) -> None:
    """The used-state mark lives in the cache: without it a callback could be replayed."""
    client = Client()
    callback = at_provider(start(client))
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    response = client.get(callback)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:start"))
    assert failure_reason() == "store_unavailable"
    assert UserSession.objects.count() == 0
    # Starting still works: the cache only saves trips to the provider.
    assert start(Client()).status_code == 302
