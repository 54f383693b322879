"""Start, track and end signed-in sessions; shared by every sign-in method."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.models import Session
from django.http import HttpRequest

from portal.accounts.models import User
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.core.http import client_ip, user_agent
from portal.signin.models import UserSession

BACKEND = "portal.accounts.backends.PasswordlessBackend"
SESSION_STARTED_KEY = "portal_started_at"
SESSION_METHOD_KEY = "portal_method"


def start_session(request: HttpRequest, user: User, method: str) -> UserSession:
    """Sign ``user`` in on this browser.

    ``auth.login`` rotates the session key (a fixated key from before sign-in dies), then
    the method, IP and user agent are written beside it for the "Your sessions" page.
    """
    auth.login(request, user, backend=BACKEND)
    request.session[SESSION_STARTED_KEY] = now().timestamp()
    request.session[SESSION_METHOD_KEY] = method
    request.session.save()
    user.last_sign_in_method = method
    user.save(update_fields=["last_sign_in_method", "last_login"])
    return UserSession.objects.create(
        user=user, session_key=request.session.session_key or "", method=method,
        ip=client_ip(request) or None, user_agent=user_agent(request))


def end_session(request: HttpRequest) -> None:
    """Sign this browser out: the server-side session row is deleted, not just the cookie."""
    user = request.user if request.user.is_authenticated else None
    key = request.session.session_key
    if user is not None:
        record_event(Tag.SIGNED_OUT, request=request, user=user)
    if key:
        UserSession.objects.filter(session_key=key).update(ended_at=now())
    auth.logout(request)  # flushes the session: deletes the row and rotates the key


def end_other_session(user: User, session_id: int) -> bool:
    """End one of ``user``'s sessions by its id; return whether one was ended."""
    row = UserSession.objects.filter(user=user, pk=session_id, ended_at__isnull=True).first()
    if row is None:
        return False
    Session.objects.filter(session_key=row.session_key).delete()
    row.ended_at = now()
    row.save(update_fields=["ended_at"])
    record_event(Tag.SESSION_ENDED, user=user, session_id=row.pk, method=row.method)
    return True


def active_sessions(user: User) -> list[UserSession]:
    live = set(Session.objects.filter(expire_date__gt=now()).values_list("session_key",
                                                                        flat=True))
    idle_cutoff = now() - timedelta(seconds=settings.SESSION_IDLE_SECONDS)
    rows = UserSession.objects.filter(user=user, ended_at__isnull=True,
                                      last_seen_at__gt=idle_cutoff)
    return [row for row in rows if row.session_key in live]
