"""End sessions that sat idle too long or lived past their absolute limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest, HttpResponse

from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.signin.models import UserSession
from portal.signin.sessions import SESSION_STARTED_KEY

# Writing last-seen on every request would make each page view a database write.
TOUCH_EVERY = timedelta(minutes=1)
LAST_SEEN_KEY = "portal_last_seen"


class SessionTimeoutMiddleware:
    """Sign out a session idle past ``SESSION_IDLE_SECONDS`` or older than ``SESSION_COOKIE_AGE``.

    Django's own expiry slides forward each time the session is saved, so on its own it
    would keep a session that is used once a day alive for ever; the start time kept in
    the session is what makes the absolute limit absolute.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            current = now().timestamp()
            started = request.session.get(SESSION_STARTED_KEY)
            if started is None:
                # A session begun outside finish_sign_in (the admin, a test helper): its
                # clock starts now rather than never.
                started = request.session[SESSION_STARTED_KEY] = current
            last_seen = request.session.get(LAST_SEEN_KEY, started)
            idle = current - last_seen > settings.SESSION_IDLE_SECONDS
            if idle or current - started > settings.SESSION_COOKIE_AGE:
                key = request.session.session_key
                UserSession.objects.filter(session_key=key).update(ended_at=now())
                record_event(Tag.SESSION_TIMED_OUT, request=request, user=request.user,
                             reason="idle" if idle else "absolute_limit")
                auth.logout(request)  # deletes the server-side row: the cookie is dead
            elif current - last_seen > TOUCH_EVERY.total_seconds():
                request.session[LAST_SEEN_KEY] = current
                UserSession.objects.filter(session_key=request.session.session_key).update(
                    last_seen_at=now())
        return self.get_response(request)
