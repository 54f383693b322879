"""The ceiling: the smallest Django project that answers a page, served like the portal.

One module is the whole project (settings, URLs, the WSGI application). It has no
database, no sessions and no templates: one view returns a short HTML page through
Django's security and common middleware. ``make bench`` serves it with the same gunicorn
settings as ``portal serve`` (2 sync workers, access log on) behind the same nginx, so what
Django, gunicorn and nginx cost on this machine is measured once, and every portal figure
is also given as a share of it.
"""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path

SECRET_KEY = "hello-ceiling-" + "h" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = __name__
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware",
              "django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<!doctype html><title>Hello</title><p>Hello, world.</p>")


urlpatterns = [path("", hello)]

application = get_wsgi_application()
