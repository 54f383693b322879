"""Django settings, built from the validated environment (see ``portal.config.env``)."""

from __future__ import annotations

from pathlib import Path

from portal.config import env

CONFIG = env.load()

BASE_DIR = env.BASE_DIR
# Templates and static files ship inside the package, so an installed wheel finds them too.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env.VAR_DIR
SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = [*CONFIG.allowed_hosts, "127.0.0.1", "localhost", "[::1]"] if DEBUG else list(
    CONFIG.allowed_hosts)

INSTALLED_APPS = [
    "portal.core",
    "portal.accounts",
    "portal.audit",
    "portal.mail",
    "portal.signin",
    "portal.servicedesk",
    "portal.helpcenter",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.signin.middleware.SessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.config.urls"
WSGI_APPLICATION = "portal.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.core.context_processors.portal",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["portal.accounts.backends.PasswordlessBackend"]
LOGIN_URL = "signin:start"
LOGIN_REDIRECT_URL = "home"

if CONFIG.redis_url:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CONFIG.redis_url, "KEY_PREFIX": "portal"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                          "LOCATION": "portal_cache"}}

# Server-side sessions in the database: a sign-out deletes the row, so a copied cookie dies too.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = CONFIG.session_max_seconds
SESSION_IDLE_SECONDS = CONFIG.session_idle_seconds
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "portal_session"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "portal.core.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = [CONFIG.base_url]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Mail: the environment always decides where mail goes, in development too (make run points
# SMTP_HOST/SMTP_PORT at its catcher). Web requests never talk SMTP: they write the outbox.
PORTAL_BASE_URL = CONFIG.base_url
PORTAL_BRAND = CONFIG.brand
DEFAULT_FROM_EMAIL = CONFIG.from_email
SERVER_EMAIL = CONFIG.from_email
EMAIL_HOST = CONFIG.smtp_host
EMAIL_PORT = CONFIG.smtp_port
EMAIL_HOST_USER = CONFIG.smtp_username
EMAIL_HOST_PASSWORD = CONFIG.smtp_password
EMAIL_USE_TLS = CONFIG.smtp_tls == "starttls"
EMAIL_USE_SSL = CONFIG.smtp_tls == "tls"
EMAIL_TIMEOUT = CONFIG.smtp_timeout
# How long a worker's claim on a message lasts. The worker cuts every SMTP conversation at
# EMAIL_TIMEOUT, so four times that (at least two minutes) outlasts the render, the
# conversation and the record: a live worker's message is never claimed by a second one.
MAIL_CLAIM_LEASE_SECONDS = max(120, 4 * EMAIL_TIMEOUT)
DKIM_SELECTOR = CONFIG.dkim_selector
DKIM_PRIVATE_KEY_FILE = CONFIG.dkim_private_key_file
DKIM_DOMAIN = CONFIG.dkim_domain
PORTAL_DEV_MAIL_DIR = CONFIG.dev_mail_dir if DEBUG else ""

# Sign-in
MAGIC_LINK_TTL_SECONDS = CONFIG.magic_link_ttl
# Fixed windows, shared across processes (Redis or the database): per address, per IP, all.
SIGNIN_RATE_LIMITS = {"address": "5/15m", "ip": "30/15m", "global": "600/m",
                      "code_ip": "20/15m"}  # one-time-code tries per IP
# "Send another link" waits this long after the last request from the same browser.
SIGNIN_RESEND_COOLDOWN_SECONDS = 60
# Set when a browser asks for a link; a link opened with it signs in with one click (rule 6).
SIGNIN_BINDING_COOKIE = "portal_signin_binding"
OIDC_PROVIDERS = {
    "google": {"client_id": CONFIG.google_client_id,
               "client_secret": CONFIG.google_client_secret,
               "discovery_url": CONFIG.google_discovery_url},
    "microsoft": {"client_id": CONFIG.microsoft_client_id,
                  "client_secret": CONFIG.microsoft_client_secret,
                  "discovery_url": CONFIG.microsoft_discovery_url},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
