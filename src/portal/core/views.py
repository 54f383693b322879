"""Views that belong to no domain: health and friendly error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from portal.core import health


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Answer 200 when email sign-in can work, 503 otherwise, saying what was checked."""
    report = health.check()
    return JsonResponse(report.as_json(), status=200 if report.ok else 503)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "core/csrf_failure.html", status=403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "core/error.html", {"title": "That request could not be read",
              "message": "Please go back and try again."}, status=400)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "core/error.html", {"title": "Page not found",
              "message": "The address may be mistyped, or the page has moved."}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    return render(request, "core/error.html", {"title": "Something went wrong on our side",
              "message": "We have been told. Please try again in a minute."}, status=500)
