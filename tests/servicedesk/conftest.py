from __future__ import annotations

import pytest
from django.test import Client

BACKEND = "portal.accounts.backends.PasswordlessBackend"


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice, backend=BACKEND)
    return client


@pytest.fixture(autouse=True)
def attachment_folder(settings, tmp_path):
    """Keep each test's attachments in a folder of its own, removed with the test."""
    folder = tmp_path / "attachments"
    settings.STORAGES = {**settings.STORAGES, "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(folder)}}}
    return folder
