"""Verbs of a person's notification choices."""

from __future__ import annotations

from portal.accounts.models import User


def set_request_updates(user: User, choice: str) -> None:
    """Store which service request updates ``user`` is emailed (``User.RequestUpdates``)."""
    if choice not in User.RequestUpdates.values:
        raise ValueError(f"not a request_updates choice: {choice!r}")
    User.objects.filter(pk=user.pk).update(request_updates=choice)
    user.request_updates = choice
