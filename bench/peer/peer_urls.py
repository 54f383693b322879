"""The peer's pages: allauth's, and one signed-in page like the portal's home."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils.html import escape


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in page: who you are."""
    return HttpResponse("<!doctype html><title>Home</title><p>Signed in as "
                        f"{escape(request.user.get_username())}.</p>")


urlpatterns = [path("", home), path("accounts/", include("allauth.urls"))]
