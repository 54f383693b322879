from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_user
from tests.passkeys.support import passkey_client

BACKEND = "portal.accounts.backends.PasswordlessBackend"


def client_for(user) -> Client:
    """Sign ``user`` in; staff as with a passkey, which the admin requires of them."""
    if user.is_staff:
        return passkey_client(user)
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


@pytest.fixture
def sam(db):
    return make_user("sam@cloudsentry.com", staff=True, superuser=True, full_name="Sam Patel")


@pytest.fixture
def staff_client(sam) -> Client:
    return client_for(sam)
