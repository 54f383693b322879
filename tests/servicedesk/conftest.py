from __future__ import annotations

import pytest
from django.test import Client

BACKEND = "portal.accounts.backends.PasswordlessBackend"


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice, backend=BACKEND)
    return client
