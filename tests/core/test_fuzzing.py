"""Hostile input to every URL pattern and every form: never a 5xx, nothing stored by a refusal.

Every route of the URLconf (walked, not listed) is requested as a visitor, a customer and a
staff member, with random and hostile values: overlong text, NUL, CR/LF, invalid UTF-8,
look-alike and IDN addresses, repeated parameters, wrong content types, bodies larger than
Django accepts. Every answer must be below 500; an answer that refuses (4xx, or a form
shown again with its errors) must leave the tables of people, sign-ins, sessions, mail,
service requests and passkeys exactly as they were. Audit rows and rate-limit logs may
grow: recording refusals is their job. Runs on SQLite and on PostgreSQL + Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from portal.accounts.models import User
from portal.audit.models import AuthEvent
from portal.servicedesk import services
from portal.signin.models import SignInRequest
from tests.core.test_security_headers import path_for, url_patterns
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db

BACKEND = "portal.accounts.backends.PasswordlessBackend"
# The tables a refused request must not touch: everything but the audit trail, rate-limit
# logs, the cache, and Django's own bookkeeping (sessions hold CSRF-free flow state).
GUARDED_APPS = ("accounts", "signin", "mail", "servicedesk", "passkeys")
# Every parameter name a portal form, page or the admin reads, and a few nobody reads.
FIELDS = ("email", "next", "code", "name", "title", "description", "priority", "body",
          "status", "page", "state", "error", "error_description", "iss", "q", "o", "p",
          "action", "_selected_action", "full_name", "is_active", "is_staff", "_to_field",
          "_popup", "e", "post", "csrfmiddlewaretoken", "x")
HOSTILE = (
    "", " ", "a" * 5000, "x" * 300 + "@northwind.example", "\x00", "alice\x00@northwind.example",
    "alice@northwind.example\r\nBcc: mallory@attacker.example", "\r\n\r\n<script>", "%00",
    # Look-alikes of alice@northwind.example: Cyrillic a, Cyrillic o, full-width letters.
    "\u0430lice@northwind.example", "alice@n\u043erthwind.example",
    "alice@northw\u00ednd.example", "alice@xn--northwnd-b0a.example",
    "\uff41\uff4c\uff49\uff43\uff45\uff20northwind.example", "alice@northwind.example.", "@", "a@b",
    "//attacker.example/", "https://attacker.example", "/\\attacker.example", "javascript:x",
    "-1", "0", "99999999999999999999999", "1e309", "NaN", "{}", "[]", "null", "true",
    "🙂" * 100, "\u202e\u2066", "'; DROP TABLE accounts_user; --", "../../etc/passwd",
)
# Any Unicode a client can encode (lone surrogates cannot be sent; invalid UTF-8 bytes are
# sent raw by the tests below).
text = st.one_of(st.sampled_from(HOSTILE),
                 st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
params = st.dictionaries(st.sampled_from(FIELDS), st.lists(text, min_size=1, max_size=3),
                         max_size=6)
FUZZ = hypothesis_settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def guarded_counts() -> dict[str, int]:
    """Return the row count of every table a refused request must leave alone (one query)."""
    tables = sorted({model._meta.db_table for model in apps.get_models()
                     if model._meta.app_label in GUARDED_APPS})
    quote_name = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Table names from the model registry, quoted: nothing here comes from a request.
        cursor.execute("SELECT " + ", ".join(  # noqa: S608
            f"(SELECT COUNT(*) FROM {quote_name(table)})" for table in tables))  # noqa: S608
        return dict(zip(tables, cursor.fetchone(), strict=True))


class Visitor(Client):
    """A browser that is signed in as ``person`` (or nobody) at the start of every request.

    Some hostile requests sign out (``/signin/signout/``, "end all sessions"); signing in
    again before each one keeps the later requests as the visitor they claim to be.
    """

    def __init__(self, person: User | None) -> None:
        super().__init__()
        self.person = person

    def request(self, **request: Any) -> Any:
        if self.person is not None and not self.session.get("_auth_user_id"):
            self.force_login(self.person, backend=BACKEND)
        return super().request(**request)


@pytest.fixture
def visitors(db: None, settings: Any) -> dict[str, Client]:
    """An anonymous visitor, Alice (customer, one open request) and Sam (staff).

    Google is configured with a discovery URL on a closed loopback port, so the OpenID
    routes run their refusals instead of answering 404.
    """
    settings.OIDC_PROVIDERS = {"google": {
        "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration",
        "client_id": "portal", "client_secret": "fuzz"}}
    alice = make_user("alice@northwind.example", make_org(), admin=True)
    sam = make_user("sam@cloudsentry.com", staff=True, superuser=True)
    services.file_request(alice, title="Printer offline", description="Dock 3.")
    return {"anonymous": Visitor(None), "customer": Visitor(alice), "staff": Visitor(sam)}


def routes() -> list[str]:
    """Return a request path for every URL pattern of the portal."""
    return [path_for(route) for route, _ in url_patterns()]


def check(client: Client, method: str, path: str, **kwargs: Any) -> int:
    """Send one request; fail on a 5xx or on a refusal that changed a guarded table."""
    before = guarded_counts()
    if isinstance(kwargs.get("data"), bytes):
        # A raw body goes out as it is (the client would re-encode it for its charset).
        response = client.generic(method.upper(), path, **kwargs)
    else:
        response = getattr(client, method)(path, **kwargs)
    status = response.status_code
    assert status < 500, f"{method.upper()} {path} answered {status}"
    # A page answering a POST with 200 is a form shown again with its errors; a JSON 200
    # (passkey options) is a success.
    shown_again = (method == "post" and status == 200
                   and response.get("Content-Type", "").startswith("text/html"))
    refused = status >= 400 or shown_again
    if refused:
        assert guarded_counts() == before, f"{method.upper()} {path} ({status}) stored rows"
    return status


def sweep(visitors: dict[str, Client]) -> Iterator[tuple[str, Client, str]]:
    for path in routes():
        for who, client in visitors.items():
            yield who, client, path


def test_every_route_survives_hostile_queries_and_forms(visitors: dict[str, Client]) -> None:
    hostile = {field: list(HOSTILE[:12]) for field in FIELDS}
    statuses = set()
    for _, client, path in sweep(visitors):
        statuses.add(check(client, "get", path, data=hostile))
        statuses.add(check(client, "post", path, data=hostile))
    assert {200, 302, 400, 403, 404, 405} <= statuses, statuses


@FUZZ
@given(agent=text, forwarded=text, path=st.sampled_from(("/signin/", "/signin/code/",
                                                         "/signin/link/" + "x" * 43 + "/",
                                                         "/signin/oidc/google/callback/",
                                                         "/passkeys/signin/")))
def test_hostile_headers_that_land_in_the_audit_trail_never_fail(
        visitors: dict[str, Client], agent: str, forwarded: str, path: str) -> None:
    for method in ("get", "post"):
        check(visitors["anonymous"], method, path, data={"email": "alice@northwind.example"},
              HTTP_USER_AGENT=agent, HTTP_X_FORWARDED_FOR=forwarded)


@pytest.mark.parametrize("content_type", [
    "application/json", "text/plain", "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded; charset=no-such-charset", "application/xml"])
def test_every_route_survives_wrong_content_types(visitors: dict[str, Client],
                                                  content_type: str) -> None:
    bodies = {"application/json": b'{"email": ["\\u0000", {"$gt": ""}], "next": 1}',
              "multipart/form-data; boundary=x": b"--x\r\nContent-Disposition: form-data\r\n"}
    body = bodies.get(content_type, b"email=%ff%fe%00&email=\xff\xfe&next=\xc0\xaf")
    for _, client, path in sweep(visitors):
        check(client, "post", path, data=body, content_type=content_type)


def test_every_route_survives_invalid_utf8_in_the_path_and_the_query(
        visitors: dict[str, Client]) -> None:
    for _, client, path in sweep(visitors):
        check(client, "get", path + "%ff%fe/", QUERY_STRING="next=%ff%c0%af&email=%00%0d%0a")
        check(client, "post", path, data=b"email=\xff\xfe\x00&code=\xc3\x28",
              content_type="application/x-www-form-urlencoded",
              QUERY_STRING="q=%ff%fe")


def test_bodies_beyond_what_django_accepts_are_refused_calmly(visitors: dict[str, Client]
                                                              ) -> None:
    huge = "email=" + "a" * (3 * 1024 * 1024)  # past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB)
    many = "&".join(f"f{i}=x" for i in range(1500))  # past DATA_UPLOAD_MAX_NUMBER_FIELDS
    for path in ("/signin/", "/signin/code/", "/requests/new/", "/passkeys/signin/",
                 "/admin/accounts/user/add/"):
        for who, client in visitors.items():
            for body in (huge, many):
                status = check(client, "post", path, data=body,
                               content_type="application/x-www-form-urlencoded")
                assert status in (400, 403, 404, 405, 413) or status == 302, (who, path, status)


@FUZZ
@given(index=st.integers(min_value=0), who=st.sampled_from(("anonymous", "customer", "staff")),
       method=st.sampled_from(("get", "post")), data=params)
def test_random_parameters_to_random_routes_never_fail(
        visitors: dict[str, Client], index: int, who: str, method: str,
        data: dict[str, list[str]]) -> None:
    paths = routes()
    check(visitors[who], method, paths[index % len(paths)], data=data)


PARAMETRIZED = ("/signin/link/{}/", "/signin/oidc/{}/start/", "/signin/oidc/{}/callback/",
                "/help/{}/", "/requests/{}/", "/passkeys/{}/rename/",
                "/admin/accounts/user/{}/change/", "/admin/{}/")


@FUZZ
@given(segment=text, path=st.sampled_from(PARAMETRIZED),
       who=st.sampled_from(("anonymous", "customer", "staff")))
def test_random_path_parameters_never_fail(visitors: dict[str, Client], segment: str,
                                          path: str, who: str) -> None:
    check(visitors[who], "get", path.format(quote(segment, safe="")))


SIGN_IN_FORMS = ("/signin/", "/signin/code/", "/signin/confirm/", "/requests/new/",
                 "/requests/1001/comments/", "/passkeys/1/rename/",
                 "/admin/accounts/user/add/", "/admin/accounts/organization/add/")


@FUZZ
@given(form=st.sampled_from(SIGN_IN_FORMS), who=st.sampled_from(("anonymous", "customer",
                                                                 "staff")),
       email=text, other=text, repeated=st.lists(text, min_size=2, max_size=4))
def test_hostile_values_in_the_forms_that_store_things(
        visitors: dict[str, Client], form: str, who: str, email: str, other: str,
        repeated: list[str]) -> None:
    data = {"email": repeated, "next": other, "code": other, "title": email,
            "description": other, "body": email, "name": email, "priority": other,
            "full_name": other}
    check(visitors[who], "post", form, data=data)


def test_a_user_agent_with_nul_and_line_breaks_is_stored_replaced(
        visitors: dict[str, Client]) -> None:
    response = visitors["anonymous"].post("/signin/", {"email": "alice@northwind.example"},
                                          HTTP_USER_AGENT="Mozilla\x00\r\nX-Forged: yes")
    assert response.status_code == 302
    stored = "Mozilla\ufffd\ufffd\ufffdX-Forged: yes"
    assert SignInRequest.objects.get().user_agent == stored
    assert set(AuthEvent.objects.values_list("user_agent", flat=True)) == {stored}
