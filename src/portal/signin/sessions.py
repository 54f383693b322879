"""Track and end signed-in sessions; ``flows/finish.py`` starts them, for every method."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest

from portal.accounts.models import User
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core import session_store
from portal.core.clock import now
from portal.signin.models import UserSession

BACKEND = "portal.accounts.backends.PasswordlessBackend"
SESSION_STARTED_KEY = "portal_started_at"
SESSION_METHOD_KEY = "portal_method"
# Ids come from the URL; one past a bigint would make the database raise instead of miss.
MAX_ID = 2**63 - 1


def signed_in_recently(request: HttpRequest) -> bool:
    """Say whether this browser signed in less than ``RECENT_SIGN_IN_SECONDS`` ago.

    The one home of the recent sign-in rule (OWASP ASVS 5.0 7.5): a session cookie copied
    or left open on a shared computer can read, but cannot end the owner's other sessions
    or change anything in the staff admin, once its sign-in is older than the window.
    ``SESSION_STARTED_KEY`` is written by ``finish_sign_in`` at every sign-in.
    """
    started = request.session.get(SESSION_STARTED_KEY)
    if not request.user.is_authenticated or not isinstance(started, int | float):
        return False
    return now().timestamp() - started < settings.RECENT_SIGN_IN_SECONDS


def end_session(request: HttpRequest) -> None:
    """Sign this browser out: the server-side session row is deleted, not just the cookie."""
    user = request.user if request.user.is_authenticated else None
    key = request.session.session_key
    if user is not None:
        record_event(Tag.SIGNED_OUT, request=request, user=user)
    if key:
        UserSession.objects.filter(session_key=key).update(ended_at=now())
    auth.logout(request)  # flushes the session: deletes the row and rotates the key


def end_other_session(user: User, session_id: int, *, keep_key: str | None = None) -> bool:
    """End one of ``user``'s sessions by its id; return whether one was ended.

    Only ``user``'s own rows are looked up, so an id belonging to someone else behaves
    exactly like an unknown one. ``keep_key`` (the caller's own session) is never ended
    here: signing this browser out goes through ``end_session``, which also clears it.
    """
    if not 0 < session_id <= MAX_ID:
        return False
    row = UserSession.objects.filter(user=user, pk=session_id, ended_at__isnull=True).first()
    if row is None or (keep_key and row.session_key == keep_key):
        return False
    session_store.end(row.session_key)
    row.ended_at = now()
    row.save(update_fields=["ended_at"])
    record_event(Tag.SESSION_ENDED, user=user, session_id=row.pk, method=row.method)
    return True


def end_other_sessions(request: HttpRequest, user: User) -> int:
    """End every session of ``user`` but this browser's; return how many were ended."""
    current = request.session.session_key
    return sum(end_other_session(user, row.pk, keep_key=current)
               for row in active_sessions(user) if row.session_key != current)


def is_current(request: HttpRequest, session_id: int) -> bool:
    """Say whether ``session_id`` is the session of this very browser."""
    key = request.session.session_key
    return (bool(key) and 0 < session_id <= MAX_ID
            and UserSession.objects.filter(pk=session_id, session_key=key).exists())


def active_sessions(user: User) -> list[UserSession]:
    """Return ``user``'s sessions that still work: not ended, not idle, not too old."""
    current = now()
    idle_cutoff = current - timedelta(seconds=settings.SESSION_IDLE_SECONDS)
    age_cutoff = current - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    rows = list(UserSession.objects.filter(user=user, ended_at__isnull=True,
                                           last_seen_at__gt=idle_cutoff,
                                           created_at__gt=age_cutoff))
    # Only this user's keys are looked up: the session table holds everyone's.
    live = session_store.live([row.session_key for row in rows])
    return [row for row in rows if row.session_key in live]


def end_all_sessions(user_ids: Sequence[int], *, reason: str) -> dict[int, int]:
    """End every session of these people, in this transaction; return how many each had.

    Called when their access was taken away (``accounts.signals.access_revoked``). Their
    session epoch has already moved on, so Django refuses every older session anyway; here
    the server-side session rows are deleted, their "Your sessions" rows are marked ended,
    and one audit row per person says so.
    """
    moment = now()
    rows = list(UserSession.objects.filter(user_id__in=user_ids, ended_at__isnull=True)
                .values_list("pk", "user_id", "session_key"))
    session_store.end(*(key for _, _, key in rows))
    UserSession.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(ended_at=moment)
    ended = Counter(user_id for _, user_id, _ in rows)
    for user in User.objects.filter(pk__in=user_ids).select_related("membership__organization"):
        record_event(Tag.SESSIONS_REVOKED, user=user, reason=reason,
                     sessions_ended=ended[user.pk])
    return {user_id: ended[user_id] for user_id in user_ids}
