"""Authentication backend for a portal without passwords."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest


class PasswordlessBackend(ModelBackend):
    """Load signed-in users and their permissions; never authenticate a password.

    Sign-in flows call ``django.contrib.auth.login`` with this backend once they have proven
    the person controls an inbox or an identity-provider account.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        return None
