"""Authentication backend for a portal without passwords."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.accounts.models import User
from portal.core.prepared import Prepared


def person_queryset(user_id: int) -> QuerySet[User]:
    """The signed-in person with their membership and its organization: one query."""
    return (User._default_manager.select_related("membership__organization")
            .filter(pk=user_id).order_by("pk")[:1])


# Every signed-in page runs it: compiled once per process (portal.core.prepared).
PERSON = Prepared(person_queryset)


class PasswordlessBackend(ModelBackend):
    """Load signed-in users and their permissions; never authenticate a password.

    Sign-in flows call ``django.contrib.auth.login`` with this backend once they have proven
    the person controls an inbox or an identity-provider account.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        return None

    def get_user(self, user_id: Any) -> User | None:
        """Return the signed-in person with their organization, or None if they may not be in.

        One query per request loads the person, their membership and its organization
        (the policy and scope every page then reads). A person turned off, or a member of
        an organization turned off, is nobody: every page treats the request as signed out.
        """
        user = PERSON.first(user_id)
        if user is None or user.access_refusal() is not None:
            return None
        return user

    async def aget_user(self, user_id: Any) -> User | None:
        return await sync_to_async(self.get_user)(user_id)

    def user_can_authenticate(self, user: Any) -> bool:
        return isinstance(user, User) and user.access_refusal() is None
