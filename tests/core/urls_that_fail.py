"""The portal's URLs plus one view that fails, to show the 500 page (tests only)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from portal.config.urls import handler400, handler404, handler500
from portal.config.urls import urlpatterns as portal_urls

FAIL_PATH = "/test-only/fail/"


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a deliberate failure, to show the server error page")


urlpatterns = [path(FAIL_PATH.strip("/") + "/", fail), *portal_urls]
__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
