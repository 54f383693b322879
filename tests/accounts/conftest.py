from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_user

BACKEND = "portal.accounts.backends.PasswordlessBackend"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


@pytest.fixture
def sam(db):
    return make_user("sam@cloudsentry.com", staff=True, superuser=True, full_name="Sam Patel")


@pytest.fixture
def staff_client(sam) -> Client:
    return client_for(sam)
