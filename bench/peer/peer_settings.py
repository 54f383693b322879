"""The peer: django-allauth 65.21.1's "sign in with a code sent by email", nothing else.

One module is the whole project (settings, URLs, the WSGI application), run only by
``make bench`` from the benchmark's own virtualenv (bench/.venv-bench), never part of the
portal. It runs like the portal does there: PostgreSQL (database sessions), the Redis cache
(allauth keeps its rate limits there), 2 gunicorn sync workers behind the same nginx, HTTPS
told by ``X-Forwarded-Proto`` with Secure cookies, and allauth's rate limits raised as far
as the portal's are, so that its code, not a limit, is measured. allauth sends the code
from inside the request (Django's SMTP backend) to the same kind of sink the portal's worker
sends to.

This module is the settings; ``peer_urls`` the pages, ``peer_wsgi`` the application and
``manage.py`` the commands (``manage.py seed N`` makes N people who may sign in).
Variables: PEER_DATABASE_URL, PEER_REDIS_URL, PEER_SMTP_PORT, PEER_SECRET_KEY.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ.get("PEER_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_peer"))

SECRET_KEY = os.environ.get("PEER_SECRET_KEY", "peer-" + "p" * 50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "peer_urls"
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "allauth",
                  "allauth.account"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware",
              "django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.common.CommonMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware",
              "allauth.account.middleware.AccountMiddleware"]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": [
                  "django.template.context_processors.request",
                  "django.contrib.auth.context_processors.auth",
                  "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql",
                         "NAME": _db.path.lstrip("/"), "USER": _db.username or "postgres",
                         "HOST": _db.hostname or "127.0.0.1", "PORT": _db.port or 5432}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/3"),
                      "KEY_PREFIX": "peer"}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend",
                           "allauth.account.auth_backends.AuthenticationBackend"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
# Raised like the portal's SIGNIN_LIMIT_* in the benchmark: still checked, never reached.
_RAISED = "1000000/m/ip,1000000/m/key"
ACCOUNT_RATE_LIMITS = {"login": "1000000/m/ip", "login_failed": _RAISED,
                       "request_login_code": _RAISED}

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ.get("PEER_SMTP_PORT", "2525"))
DEFAULT_FROM_EMAIL = "Peer <noreply@peer.example>"
