"""A URL configuration where "home" is somewhere else (tests/core/test_reversed_once.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("elsewhere")


urlpatterns = [path("elsewhere/", home, name="home")]
