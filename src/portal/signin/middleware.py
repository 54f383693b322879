"""End sessions that sat idle too long or lived past their absolute limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest, HttpResponse

from portal.core.clock import now
from portal.signin.models import UserSession
from portal.signin.sessions import SESSION_STARTED_KEY

# Writing last-seen on every request would make each page view a database write.
TOUCH_EVERY = timedelta(minutes=1)
LAST_SEEN_KEY = "portal_last_seen"


class SessionTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            current = now().timestamp()
            started = request.session.get(SESSION_STARTED_KEY, current)
            last_seen = request.session.get(LAST_SEEN_KEY, started)
            if (current - last_seen > settings.SESSION_IDLE_SECONDS
                    or current - started > settings.SESSION_COOKIE_AGE):
                key = request.session.session_key
                UserSession.objects.filter(session_key=key).update(ended_at=now())
                auth.logout(request)
            elif current - last_seen > TOUCH_EVERY.total_seconds():
                request.session[LAST_SEEN_KEY] = current
                UserSession.objects.filter(session_key=request.session.session_key).update(
                    last_seen_at=now())
        return self.get_response(request)
