"""The admin pages in Debian's Chromium: turning someone off ends their live session in
another browser at once; a passkey is refused once the organization turns passkeys off;
the pages pass the accessibility audit."""

from __future__ import annotations

from typing import Any

import pytest

from portal.accounts.models import Organization, User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.passkeys.models import Passkey
from tests.browser.conftest import (  # noqa: F401 - fixtures shared with the browser suite
    Auditor,
    NewContext,
    auditor,
    axe_source,
    new_context,
    sign_in,
)
from tests.factories import make_user
from tests.passkeys.test_passkey_browser import _sign_out, _with_authenticator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BOB = "bob@northwind.example"


@pytest.fixture
def portal(live_server: Any, smtp: Any, settings: Any, alice: User,
           northwind: Organization) -> str:
    settings.PORTAL_BASE_URL = live_server.url
    make_user(BOB, northwind, full_name="Bob Ng")
    return str(live_server.url)


def test_turning_someone_off_ends_their_live_session_in_another_browser(
        new_context: NewContext, portal: str, smtp: Any,  # noqa: F811
        auditor: Auditor) -> None:  # noqa: F811
    admin, other = new_context(), new_context()
    if True:  # contexts close with the fixture
        alice_page, bob_page = admin.new_page(), other.new_page()
        sign_in(alice_page, portal, smtp)
        sign_in(bob_page, portal, smtp, email=BOB)
        bob_page.goto(f"{portal}/requests/")
        assert bob_page.url == f"{portal}/requests/"

        alice_page.get_by_role("link", name="Your organization").click()
        subnav = alice_page.get_by_role("navigation", name="Organization admin")
        subnav.get_by_role("link", name="Members").click()
        alice_page.get_by_role("heading", name="Members of Northwind Logistics").wait_for()
        auditor.check(alice_page, "members")
        alice_page.get_by_role("button", name=f"Turn off the account of {BOB}").click()
        alice_page.get_by_text("Bob Ng's account is turned off").wait_for()
        assert alice_page.get_by_role("button", name=f"Turn back on the account of {BOB}"
                                      ).count() == 1

        # Bob's browser, untouched since: its next request is signed out.
        bob_page.reload()
        assert "/signin/" in bob_page.url
        assert bob_page.get_by_role("button", name="Sign out").count() == 0

        subnav.get_by_role("link", name="Sign-in policy").click()
        alice_page.get_by_role("heading", name="Sign-in policy of Northwind Logistics"
                               ).wait_for()
        auditor.check(alice_page, "policy")
        auditor.assert_clean()


def test_a_passkey_is_refused_once_the_organization_turns_passkeys_off(
        browser: Any, portal: str, smtp: Any, northwind: Organization) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        _with_authenticator(context, page)
        sign_in(page, portal, smtp, email=BOB)
        page.goto(f"{portal}/passkeys/")
        page.get_by_role("button", name="Add a passkey").click()
        page.get_by_role("rowheader", name="Passkey 1").wait_for()
        _sign_out(page)

        northwind.allow_passkey = False
        northwind.save(update_fields=["allow_passkey"])
        page.goto(f"{portal}/signin/")
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.get_by_text("Your organization does not allow passkeys").wait_for()
        assert page.get_by_role("button", name="Sign out").count() == 0
        bob = User.objects.get(email=BOB)
        assert AuthEvent.objects.filter(tag=Tag.PASSKEY_FAILED, user=bob,
                                        reason="method_not_allowed").exists()
        assert not AuthEvent.objects.filter(tag=Tag.PASSKEY_SIGNED_IN, user=bob).exists()
        assert Passkey.objects.filter(user=bob).count() == 1  # kept, for if it comes back
    finally:
        context.close()
