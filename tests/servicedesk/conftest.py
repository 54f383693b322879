from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_org, make_user

BACKEND = "portal.accounts.backends.PasswordlessBackend"


@pytest.fixture
def northwind(db):
    return make_org("Northwind Logistics", ["northwind.example"])


@pytest.fixture
def contoso(db):
    return make_org("Contoso Freight", ["contoso.example"])


@pytest.fixture
def alice(northwind):
    return make_user("alice@northwind.example", northwind, admin=True, full_name="Alice Moreno")


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice, backend=BACKEND)
    return client
