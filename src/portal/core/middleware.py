"""Middleware of the portal as a whole (not of one app)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from portal.core.http import from_trusted_proxy
from portal.core.moments import zone_for


class TrustedProxyMiddleware:
    """Believe X-Forwarded-Proto only from the proxies named in FORWARDED_ALLOW_IPS.

    Django's ``SECURE_PROXY_SSL_HEADER`` believes the header from any peer, so a client
    that reached gunicorn directly could call a plain-HTTP request HTTPS. Dropping the
    header from everyone else makes the scheme, like the client address
    (``portal.core.http.client_ip``), come only from a trusted proxy. It runs first, before
    anything asks ``request.is_secure()``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not from_trusted_proxy(request):
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        return self.get_response(request)


class TimeZoneMiddleware:
    """Show every time in the reader's own zone: ``zone_for(request.user)`` for the request.

    Runs after authentication (it reads ``request.user``). Signed out, the zone is the
    portal's (``TIME_ZONE``, UTC). Templates, the ``moment`` filter and the staff admin all
    read the active zone, so this one place decides it for every page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        signed_in = getattr(user, "is_authenticated", False)
        timezone.activate(zone_for(user if signed_in else None))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
