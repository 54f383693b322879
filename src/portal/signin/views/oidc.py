"""OpenID Connect views (Sign in with Google / Microsoft). Being built (issue 5)."""

from django.http import Http404, HttpRequest, HttpResponse


def start(request: HttpRequest, provider: str) -> HttpResponse:
    raise Http404


def callback(request: HttpRequest, provider: str) -> HttpResponse:
    raise Http404
