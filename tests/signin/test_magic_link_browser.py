"""The whole email-link journey in Debian's Chromium against a live server, worker and SMTP.

Screenshots of each page land in test-results/<test>/; with UPDATE_DOCS_SCREENSHOTS=1 the
ones the README shows are copied to docs/img/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import make_org, make_user
from tests.signin.magic import ask, deliver_and_read, html_of
from tests.support import screenshots

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def test_email_link_journey(browser, live_server, smtp, settings, artifacts: Path) -> None:
    settings.PORTAL_BASE_URL = live_server.url
    org = make_org()
    make_user("alice@northwind.example", org, full_name="Alice Moreno")
    shots: dict[str, Path] = {}

    def shot(page, name: str) -> None:
        shots[name] = artifacts / f"{name}.png"
        screenshots.take(page, path=str(shots[name]), full_page=True)

    first = browser.new_context(viewport={"width": 1000, "height": 760})
    page = first.new_page()
    page.goto(f"{live_server.url}/requests/")
    assert "/signin/" in page.url  # sent to sign in, with where they were going remembered
    shot(page, "signin")
    page.get_by_label("Work email address").fill("alice@northwind.example")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert "alice@northwind.example" in page.inner_text("main")
    shot(page, "check-inbox")

    (link,) = deliver_and_read(smtp)
    email_page = first.new_page()
    email_page.set_content(html_of(link.email))
    shot(email_page, "email")
    email_page.close()

    # Same browser: one click, signed in, token gone from the address bar.
    page.goto(link.url)
    assert page.url == f"{live_server.url}/requests/"
    assert "/signin/link/" not in page.url
    assert page.get_by_role("button", name="Sign out").count() == 1
    shot(page, "signed-in")

    # A fresh link, asked for elsewhere, opened in a second browser: confirm, then signed in.
    smtp.clear()
    ask(Client(), "alice@northwind.example")
    (fresh,) = deliver_and_read(smtp)
    second = browser.new_context(viewport={"width": 1000, "height": 760})
    other = second.new_page()
    other.goto(fresh.url)
    other.get_by_role("heading", name="Sign in as alice@northwind.example?").wait_for()
    shot(other, "confirm")
    other.get_by_role("button", name="Sign in on this device").click()
    other.wait_for_url(f"{live_server.url}/")
    assert other.get_by_role("button", name="Sign out").count() == 1

    # The first link again: already used, with a way to ask for a fresh one.
    other.goto(link.url)
    other.get_by_role("heading", name="This link has already been used").wait_for()
    assert other.get_by_role("button", name="Email me a fresh link").count() == 1
    shot(other, "already-used")

    first.close()
    second.close()
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for name in ("signin", "check-inbox", "confirm", "email"):
            shutil.copy(shots[name], DOCS_IMG / f"{name}.png")
