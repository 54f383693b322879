"""Settings for the test suite: production settings with a test environment.

The suite runs with ``PORTAL_DEBUG`` off, as production does; only what a plain-HTTP
loopback server cannot honour is relaxed (secure-only cookies), and the developer tooling
that production leaves out is installed so that its tests run. ``tests/config`` checks
production mode separately, in a subprocess, with no relaxations; so does
``tests/devtools/test_only_in_development.py`` for the developer tooling.
"""

import os

os.environ.setdefault("PORTAL_SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("PORTAL_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("SMTP_TLS", "none")
# The test client and live servers speak plain HTTP on loopback (PORTAL_BASE_URL's default).
os.environ.setdefault("PORTAL_ALLOW_INSECURE_HTTP", "true")
# Playwright's sync API keeps an event loop in the test thread; Django's async-safety check
# would refuse every ORM call in the tests that drive a browser.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from portal.config.settings import *  # noqa: F403

if "portal.devtools" not in INSTALLED_APPS:  # noqa: F405
    INSTALLED_APPS.append("portal.devtools")  # noqa: F405
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Without Secure a browser refuses __Host- cookies: the plain-HTTP names go with it.
(SESSION_COOKIE_NAME, CSRF_COOKIE_NAME, SIGNIN_BINDING_COOKIE, SIGNIN_DEVICE_COOKIE,
 SIGNIN_TICKET_COOKIE, SIGNIN_PROBLEM_COOKIE, PASSKEY_OFFER_COOKIE) = cookie_names(  # noqa: F405
    secure=SESSION_COOKIE_SECURE)
SECURE_HSTS_SECONDS = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # A folder of its own per test run (tests/servicedesk moves it per test).
    "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(VAR_DIR / "test-attachments")}},  # noqa: F405
}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "root": {"handlers": [], "level": "WARNING"}}
# No collectstatic in tests: WhiteNoise serves from the finders (WHITENOISE_USE_FINDERS).
STATIC_ROOT = None  # type: ignore[assignment]
# Live-server request threads are daemons that can outlive a test on a kept-alive browser
# socket; with persistent connections they would hold PostgreSQL connections open and stop
# the test database from being dropped. Closing at the end of each request avoids that.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
