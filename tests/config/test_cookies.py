"""The portal's cookies and headers as an operator's ``portal`` process sends them.

A ``portal shell`` subprocess in production mode (no test settings) asks for a sign-in
link over HTTPS and prints every Set-Cookie header and the page's headers; the cookies
must carry the ``__Host-`` prefix with the attributes the prefix demands (ASVS 3.3.1,
3.3.3). Development mode, over plain HTTP, keeps the bare names.
"""

from __future__ import annotations

import json

import pytest

from tests.config.portal_cli import PROPER_KEY, run_portal

BASE_URL = "https://portal.example.com"
# Runs inside the subprocess: Django's test client drives the real middleware stack, and
# each morsel's output is what the WSGI handler sends as a Set-Cookie header.
ASK_FOR_A_LINK = """
import json
from django.test import Client
secure = {secure}
browser = Client(HTTP_HOST="portal.example.com" if secure else "127.0.0.1")
page = browser.get("/signin/", secure=secure)
asked = browser.post("/signin/", {{"email": "alice@northwind.example"}}, secure=secure)
print(json.dumps({{
    "statuses": [page.status_code, asked.status_code],
    "cookies": [m.output(header="").strip() for r in (page, asked) for m in r.cookies.values()],
    "headers": dict(page.headers),
}}))
"""
PRODUCTION = {"PORTAL_SECRET_KEY": PROPER_KEY, "PORTAL_BASE_URL": BASE_URL}
DEVELOPMENT = {"PORTAL_DEBUG": "true"}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One migrated SQLite database for this module's subprocesses."""
    folder = tmp_path_factory.mktemp("cookies")
    variables = {"DATABASE_URL": f"sqlite:///{folder / 'portal.sqlite3'}",
                 "PORTAL_VAR_DIR": str(folder)}
    result = run_portal("migrate", "--noinput", **PRODUCTION, **variables)
    assert result.returncode == 0, result.stderr
    return variables


def ask_for_a_link(database: dict[str, str], *, production: bool) -> dict[str, object]:
    mode = PRODUCTION if production else DEVELOPMENT
    result = run_portal("shell", "-c", ASK_FOR_A_LINK.format(secure=production),
                        **mode, **database)
    assert result.returncode == 0, result.stderr
    printed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["statuses"] == [200, 302], printed
    return printed


@pytest.fixture(scope="module")
def production(database: dict[str, str]) -> dict[str, object]:
    return ask_for_a_link(database, production=True)


def parse(set_cookie: str) -> tuple[str, dict[str, str]]:
    """Return a Set-Cookie header's name and its attributes (lower-cased names)."""
    first, *rest = (part.strip() for part in set_cookie.split(";"))
    name = first.split("=", 1)[0]
    attributes = {}
    for item in rest:
        key, _, value = item.partition("=")
        attributes[key.lower()] = value
    return name, attributes


def test_production_cookies_are_host_prefixed_secure_httponly_lax_at_the_root(
        production: dict[str, object]) -> None:
    cookies = dict(parse(header) for header in production["cookies"])
    assert set(cookies) == {"__Host-csrftoken", "__Host-portal_signin_binding",
                            "__Host-portal_session"}
    for name, attributes in cookies.items():
        # What a browser requires before it keeps a __Host- cookie at all.
        assert "secure" in attributes, name
        assert attributes.get("path") == "/", name
        assert "domain" not in attributes, name
        assert "httponly" in attributes, name
        assert attributes.get("samesite") == "Lax", name


def test_production_pages_carry_hsts_and_the_strict_headers(
        production: dict[str, object]) -> None:
    headers = production["headers"]
    assert isinstance(headers, dict)
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "'nonce-" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "camera=()" in headers["Permissions-Policy"]
    assert "no-store" in headers["Cache-Control"]
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


def test_development_mode_keeps_the_bare_cookie_names(database: dict[str, str]) -> None:
    printed = ask_for_a_link(database, production=False)
    cookies = dict(parse(header) for header in printed["cookies"])
    assert set(cookies) == {"csrftoken", "portal_signin_binding", "portal_session"}
    assert all("secure" not in attributes for attributes in cookies.values())
