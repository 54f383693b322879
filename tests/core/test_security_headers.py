"""Every URL pattern answers with the portal's security headers, whatever the status.

The expected values are written out here, not read from ``portal.core.security_headers``,
so a change to the policy there fails these tests until someone decides it here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from portal.core.clock import now
from portal.devtools import catcher
from portal.helpcenter.articles import all_articles
from portal.mail.compose import compose
from portal.mail.outbox import new_message_id
from portal.servicedesk import services
from tests.core.urls_that_fail import FAIL_PATH
from tests.factories import make_org, make_user
from tests.passkeys.support import passkey_client

pytestmark = pytest.mark.django_db

BACKEND = "portal.accounts.backends.PasswordlessBackend"
NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]{22,})'")
STRICT_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "NONCE"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
# The portal uses none of these; passkeys (WebAuthn) it will, on its own pages only.
MUST_DENY = ("camera", "microphone", "geolocation", "payment", "usb", "serial", "hid",
             "midi", "display-capture", "clipboard-read", "browsing-topics")
SELF_ONLY = ("publickey-credentials-get", "publickey-credentials-create")
# Sample values for URL parameters, by name; a new parameter needs one here.
SAMPLES = {"token": "x" * 43, "provider": "google", "session_id": "1", "number": "1001",
           "key": "1700000000.M1P1Q1.host", "object_id": "1", "content_type_id": "1",
           "app_label": "accounts", "url": "no-such-page/", "passkey_id": "1",
           "attachment_id": "1", "request_id": "1", "user_id": "1", "invitation_id": "1"}
SAMPLES_BY_CONVERTER = {"slug": lambda: all_articles()[0].slug}


def policy_of(response: Any) -> dict[str, list[str]]:
    """Return the response's CSP as {directive: sources}, the nonce written as NONCE."""
    parsed: dict[str, list[str]] = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        parsed[name] = [("NONCE" if NONCE.fullmatch(s) else s) for s in sources]
    return parsed


def header_problems(response: Any, policy: dict[str, list[str]] | None = None) -> list[str]:
    """Return what is wrong with the response's security headers (nothing, ideally)."""
    found = []
    if "Content-Security-Policy" not in response:
        return ["no Content-Security-Policy"]
    if policy_of(response) != (policy or STRICT_POLICY):
        found.append(f"CSP {response['Content-Security-Policy']!r}")
    features = dict(item.strip().split("=", 1)
                    for item in response.get("Permissions-Policy", "").split(","))
    for name in MUST_DENY:
        if features.get(name) != "()":
            found.append(f"Permissions-Policy: {name}={features.get(name)}")
    for name in SELF_ONLY:
        if features.get(name) != "(self)":
            found.append(f"Permissions-Policy: {name}={features.get(name)}")
    if not set(features.values()) <= {"()", "(self)"}:
        found.append(f"Permissions-Policy allows more than self: {features}")
    if "no-store" not in response.get("Cache-Control", ""):
        found.append(f"Cache-Control {response.get('Cache-Control')!r}")
    expected = {"Cross-Origin-Opener-Policy": {"same-origin"}, "X-Frame-Options": {"DENY"},
                "X-Content-Type-Options": {"nosniff"},
                "Referrer-Policy": {"same-origin", "no-referrer"}}
    for name, allowed in expected.items():
        if response.get(name) not in allowed:
            found.append(f"{name} {response.get(name)!r}")
    return found


def url_patterns(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (route, pattern) for every URL pattern, resolvers unfolded."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry.url_patterns, prefix + str(entry.pattern))
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + str(entry.pattern), entry


def path_for(route: str) -> str:
    """Return a request path that ``route`` matches, parameters filled from SAMPLES."""
    def fill(match: re.Match[str]) -> str:
        groups = match.groupdict()
        converter, name = groups.get("converter") or "str", groups["name"]
        if converter in SAMPLES_BY_CONVERTER:
            return SAMPLES_BY_CONVERTER[converter]()
        assert name in SAMPLES, f"{route}: add a sample value for <{name}> to SAMPLES"
        return SAMPLES[name]
    path = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", fill, route)  # regex patterns first
    path = re.sub(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>", fill, path)
    return "/" + path.replace("^", "").replace("$", "")


def test_every_url_pattern_answers_with_the_security_headers() -> None:
    org = make_org()
    alice = make_user("alice@northwind.example", org)
    staff = make_user("sam@cloudsentry.example", staff=True, superuser=True)
    services.file_request(alice, title="Printer offline", description="Dock 3.")
    customer = Client()
    customer.force_login(alice, backend=BACKEND)
    admin = passkey_client(staff)
    visitors = {"anonymous": Client(), "customer": customer, "staff": admin}
    problems, statuses, routes = [], set(), 0
    for route, _ in url_patterns():
        path = path_for(route)
        # Django drops the "^" of nested regex patterns from the route it reports.
        assert resolve(path).route == route.replace("^", ""), f"{path} misses {route}"
        routes += 1
        answers = [(f"GET as {who}", client.get(path)) for who, client in visitors.items()]
        answers.append(("POST as anonymous", Client().post(path, {})))
        for how, response in answers:
            statuses.add(response.status_code)
            problems += [f"{how} {path} ({response.status_code}): {problem}"
                         for problem in header_problems(response)]
    assert routes > 50
    assert not problems, "\n".join(problems)
    # Redirects, pages and refusals alike: the headers do not depend on the outcome.
    assert {200, 302, 400, 403, 404, 405} <= statuses, statuses


def test_the_server_error_page_has_the_security_headers(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.core.urls_that_fail"
    response = Client(raise_request_exception=False).get(FAIL_PATH)
    assert response.status_code == 500
    assert header_problems(response) == []


def test_a_request_for_another_host_gets_400_with_the_security_headers() -> None:
    response = Client().get("/signin/", HTTP_HOST="portal.attacker.example")
    assert response.status_code == 400
    assert header_problems(response) == []


def test_a_csrf_failure_has_the_security_headers() -> None:
    response = Client(enforce_csrf_checks=True).post("/signin/", {"email": "a@b.example"})
    assert response.status_code == 403
    assert header_problems(response) == []


def test_each_response_has_its_own_nonce_and_the_page_scripts_carry_it() -> None:
    client = Client()
    client.post("/signin/", {"email": "alice@northwind.example"})
    first, second = client.get("/signin/check-inbox/"), client.get("/signin/check-inbox/")
    nonces = []
    for response in (first, second):
        assert response.status_code == 200
        (nonce,) = NONCE.findall(response["Content-Security-Policy"])
        scripts = re.findall(r"<script\b[^>]*>", response.content.decode())
        assert scripts, "the check-your-inbox page loads signin.js"
        assert all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    # 16 random bytes: 22 characters of URL-safe base64.
    assert all(len(nonce) >= 22 for nonce in nonces)


def test_static_files_carry_the_policy_and_stay_cacheable() -> None:
    response = Client().get("/static/portal/portal.css")
    response.close()  # WhiteNoise streams from an open file
    assert response.status_code == 200
    assert policy_of(response) == STRICT_POLICY
    assert "no-store" not in response.get("Cache-Control", "")
    # The portal's own pages, the help center included, are never stored.
    assert "no-store" in Client().get("/help/")["Cache-Control"]


GOOGLE = "https://accounts.google.com/.well-known/openid-configuration"
MICROSOFT = "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"


@pytest.mark.parametrize(("providers", "expected"), [
    ({}, ["'self'"]),
    ({"google": {"client_id": "g", "discovery_url": GOOGLE},
      "microsoft": {"client_id": "m", "discovery_url": MICROSOFT}},
     ["'self'", "https://accounts.google.com", "https://login.microsoftonline.com"]),
    # Without a client id a provider is not offered, so no form goes there.
    ({"google": {"client_id": "", "discovery_url": GOOGLE},
      "microsoft": {"client_id": "m", "discovery_url": MICROSOFT}},
     ["'self'", "https://login.microsoftonline.com"]),
    ({"google": {"client_id": "g", "discovery_url": "http://127.0.0.1:8123/.well-known/x"},
      "microsoft": {"client_id": "m", "discovery_url": "https://[::1]:8443/d"}},
     ["'self'", "http://127.0.0.1:8123", "https://[::1]:8443"]),
    # Two providers on one host: the origin once.
    ({"google": {"client_id": "g", "discovery_url": "https://sso.example/a"},
      "microsoft": {"client_id": "m", "discovery_url": "https://sso.example/b"}},
     ["'self'", "https://sso.example"]),
], ids=["none", "both", "microsoft-only", "ports", "same-host"])
def test_form_action_allows_exactly_the_configured_identity_providers(
        settings: Any, providers: dict[str, Any], expected: list[str]) -> None:
    settings.OIDC_PROVIDERS = providers
    response = Client().get("/signin/")
    assert policy_of(response)["form-action"] == expected
    assert header_problems(response, {**STRICT_POLICY, "form-action": expected}) == []


def test_only_the_dev_mail_message_page_may_use_inline_styles(settings: Any,
                                                               tmp_path: Path) -> None:
    settings.DEBUG = True
    settings.PORTAL_DEV_MAIL_DIR = str(tmp_path / "mail")
    composed = compose(to="alice@northwind.example", subject="Hello", text="Hi\n",
                       html='<p style="color: #111">Hi</p>', message_id=new_message_id(),
                       date=now())
    key = catcher.open_maildir(tmp_path / "mail").add(composed.data)
    message = Client().get(f"/dev/mail/{key}/")
    assert message.status_code == 200
    assert header_problems(message, {**STRICT_POLICY,
                                     "style-src": ["'self'", "'unsafe-inline'"]}) == []
    assert header_problems(Client().get("/dev/mail/")) == []

