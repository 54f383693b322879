"""People and signed-in browsers for the organization admin tests.

Northwind (``northwind``, ``alice`` its admin) comes from the root conftest. Here: Bob, a
plain Northwind member; Contoso with its own admin Carl. Admins sign in through the real
``finish_sign_in`` (``tests.signin.test_sessions.sign_in``), so their sessions are recent.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from portal.accounts.models import Organization, User
from portal.mail.worker import deliver_due
from tests.factories import make_user
from tests.signin.magic import text_of
from tests.signin.test_sessions import sign_in
from tests.support.smtp import SMTPServer

INVITATION_LINK = re.compile(r"https?://[^\s\"<>]+/organization/invitation/([A-Za-z0-9_-]+)/")


@pytest.fixture
def bob(northwind: Organization) -> User:
    return make_user("bob@northwind.example", northwind, full_name="Bob Ng")


@pytest.fixture
def carl(contoso: Organization) -> User:
    """Carl, Contoso's admin: another customer's admin, who must see nothing of Northwind."""
    return make_user("carl@contoso.example", contoso, admin=True, full_name="Carl Diaz")


def signed_in(user: User, method: str = "email") -> Client:
    """Return a browser in which ``user`` just signed in (a recent sign-in)."""
    client = Client()
    sign_in(client, user, method=method)
    return client


@pytest.fixture
def as_alice(alice: User) -> Client:
    return signed_in(alice)


def invitation_links(smtp: SMTPServer, count: int = 1) -> list[tuple[str, str, Any]]:
    """Run the worker once; return (url, token, email) of each invitation that arrived."""
    deliver_due()
    found = []
    for received in smtp.wait_for(count, timeout=5):
        match = INVITATION_LINK.search(text_of(received))
        assert match, "no invitation link in the email"
        found.append((match.group(0), match.group(1), received))
    return found
