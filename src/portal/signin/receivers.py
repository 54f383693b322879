"""What the sign-in app does when the accounts app says something happened to a person."""

from __future__ import annotations

from typing import Any

from portal.signin.sessions import end_all_sessions


def end_sessions_on_revocation(sender: Any, *, user_ids: list[int], reason: str,
                               **kwargs: Any) -> None:
    """Access was taken away: end every session of these people (``access_revoked``)."""
    end_all_sessions(user_ids, reason=reason)
