"""Middleware of the portal as a whole (not of one app)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from portal.core.http import from_trusted_proxy


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
