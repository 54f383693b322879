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
    "portal.passkeys",
    "portal.servicedesk",
    "portal.helpcenter",
    "portal.orgadmin",
    "portal.metrics",
    "portal.notifications",
    "portal.accounts.apps.PortalAdminConfig",  # django.contrib.admin with PortalAdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
# Developer tooling (portal dev, portal demo, the mail catcher and its /dev/mail/ pages) is
# installed in development only: caught mail holds live sign-in links, and `portal demo`
# makes sam@cloudsentry.com a superuser. A production deployment has neither those pages
# nor those commands (the URLconf includes /dev/mail/ only where this app is installed).
if DEBUG:
    INSTALLED_APPS.append("portal.devtools")

MIDDLEWARE = [
    # First: X-Forwarded-Proto is dropped unless a trusted proxy sent it (FORWARDED_ALLOW_IPS).
    "portal.core.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that can refuse a request (a bad Host, CSRF), so refusals carry
    # the headers too; before WhiteNoise, so static files carry the CSP and X-Frame-Options.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.core.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.signin.middleware.SessionTimeoutMiddleware",
    "portal.signin.devices.DeviceCookieMiddleware",
    # After authentication: every time on the page is in the reader's own zone.
    "portal.core.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "portal.config.urls"
WSGI_APPLICATION = "portal.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # Django's {% url %}, with a URL without arguments reversed once per process.
            "builtins": ["portal.core.templatetags.reversed_once"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.core.context_processors.portal",
                "portal.signin.context_processors.federation",
                "portal.passkeys.context_processors.offer",
                "portal.orgadmin.context_processors.organization_admin",
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
# With Redis, a copy there serves every page without a query (decision 0020).
SESSION_ENGINE = ("portal.core.session_store_cached" if CONFIG.redis_url
                  else "portal.core.session_store")
SESSION_COOKIE_AGE = CONFIG.session_max_seconds
SESSION_IDLE_SECONDS = CONFIG.session_idle_seconds
# Sensitive actions (ending other sessions, staff admin changes) need a sign-in this recent.
RECENT_SIGN_IN_SECONDS = CONFIG.recent_sign_in_seconds
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "portal.core.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Secure cookies and HSTS need HTTPS, which production mode has and development does not.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
if not DEBUG:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Believed only from FORWARDED_ALLOW_IPS: TrustedProxyMiddleware drops it from others.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = [CONFIG.base_url]


def cookie_names(secure: bool) -> tuple[str, str, str, str, str, str, str]:
    """Return every cookie name of the portal for secure or plain HTTP, in one place.

    Over HTTPS they carry a prefix (ASVS 3.3.1): ``__Host-`` where the cookie can have
    ``Path=/`` (a browser then keeps it only if it is Secure, has that path and no Domain, so
    neither a plain-HTTP page nor a sibling subdomain can plant or overwrite one: cookie
    tossing, session fixation), ``__Secure-`` for the ones scoped to one path. Browsers
    refuse the prefixes without Secure, so plain HTTP (development mode) keeps bare names.
    Order: session, CSRF, link binding, device, confirm ticket, link problem, passkey offer.
    """
    host, scoped = ("__Host-", "__Secure-") if secure else ("", "")
    return (f"{host}portal_session", f"{host}csrftoken", f"{host}portal_signin_binding",
            f"{host}portal_device", f"{scoped}portal_signin_ticket",
            f"{scoped}portal_signin_problem", f"{host}portal_passkey_offer")


# SIGNIN_BINDING_COOKIE is set when a browser asks for a link; a link opened with it signs
# in with one click (rule 6). SIGNIN_DEVICE_COOKIE says this browser signed in as these
# addresses (signin/devices.py). Both must be set with path "/" (the prefix demands it).
# SIGNIN_TICKET_COOKIE names the link a browser opened without asking, for the confirm
# page; SIGNIN_PROBLEM_COOKIE what the link-problem page explains. PASSKEY_OFFER_COOKIE says
# this browser dismissed "add a passkey" (portal.passkeys.offers).
(SESSION_COOKIE_NAME, CSRF_COOKIE_NAME, SIGNIN_BINDING_COOKIE, SIGNIN_DEVICE_COOKIE,
 SIGNIN_TICKET_COOKIE, SIGNIN_PROBLEM_COOKIE, PASSKEY_OFFER_COOKIE) = cookie_names(
    secure=SESSION_COOKIE_SECURE)

# The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (parsed
# networks; portal.core.http.client_ip and TrustedProxyMiddleware read them).
FORWARDED_ALLOW_IPS = CONFIG.forwarded_allow_ips
# /metrics answers only to this bearer token; unset, the page does not exist.
METRICS_TOKEN = CONFIG.metrics_token

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
# One way to write a moment everywhere, the staff admin included (its lists and forms read
# these through Django's format lookup, which our own format module answers first):
# "1 Dec 2026, 14:51 GMT", as portal.core.moments.MOMENT_FORMAT.
FORMAT_MODULE_PATH = ["portal.config.formats"]

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Files attached to service requests (portal.servicedesk.attachments): a private folder
    # under PORTAL_VAR_DIR, or an S3-compatible bucket with ATTACHMENT_STORAGE=s3.
    "attachments": CONFIG.attachment_storage,
}
ATTACHMENT_MAX_BYTES = CONFIG.attachment_max_bytes
ATTACHMENT_MAX_FILES = CONFIG.attachment_max_files
# The size limit first: bytes of a file past ATTACHMENT_MAX_BYTES are never kept, in memory
# or in a temporary file (portal.servicedesk.attachments.SizeLimitUploadHandler).
FILE_UPLOAD_HANDLERS = [
    "portal.servicedesk.attachments.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
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
# Sliding windows, shared across processes (Redis or the database), from SIGNIN_LIMIT_*:
# per address, per device (a browser that signed in as the address before), per client IP,
# overall, and one-time-code tries per client IP (portal.core.ratelimit).
SIGNIN_RATE_LIMITS = {
    **CONFIG.signin_limits,
    # One-time-code tries per address across requests (a new request never restores them,
    # NIST SP 800-63B-4 3.1.3.2) and overall; together with five per request and the
    # per-IP limit they bound guessing at scale (docs/security.md, rule 11).
    "code_address": "10/1d", "code_global": "300/h",
    # Audit rows written for cookie-less link loads, per client address.
    "link_audit_ip": "30/15m",
    # Polls of the asking tab's status, per sign-in request: twice the page's own pace
    # (one every 2 seconds), so a second tab fits and a script cannot hammer it (with Redis).
    "status": "60/m",
    # Audit rows of refused link requests: per address and per client address, and overall.
    "refusal_audit": "20/15m", "refusal_audit_global": "300/m",
    # Google/Microsoft refusals written to the audit trail, per client address.
    "oidc_failures_ip": "50/15m",
    # Passkey sign-in attempts (each one verifies a signature), per client address and all.
    "passkey_ip": "30/15m", "passkey_global": "600/m",
}
# "Send another link" waits this long after the last request from the same browser.
SIGNIN_RESEND_COOLDOWN_SECONDS = 60
# An organization admin's invitation link works once, this long (INVITATION_TTL_SECONDS).
INVITATION_TTL_SECONDS = CONFIG.invitation_ttl
# Invitations one admin may send, and one organization may send, in any window
# (portal.orgadmin.invitations); resends count too.
INVITATION_RATE_LIMITS = {"admin": "30/1h", "organization": "100/1d"}
# A passkey enrolment link (portal adduser --staff, portal passkey-reset) works once, this long.
PASSKEY_ENROLMENT_SECONDS = 24 * 3600
# The pending Google/Microsoft sign-in (state, nonce, PKCE verifier), signed, Path=/signin/oidc/,
# ten minutes; named "__Secure-" + this wherever cookies are Secure (docs/oidc.md).
SIGNIN_OIDC_COOKIE = "portal_oidc"
OIDC_PROVIDERS = {
    "google": {"client_id": CONFIG.google_client_id,
               "client_secret": CONFIG.google_client_secret,
               "discovery_url": CONFIG.google_discovery_url},
    "microsoft": {"client_id": CONFIG.microsoft_client_id,
                  "client_secret": CONFIG.microsoft_client_secret,
                  "discovery_url": CONFIG.microsoft_discovery_url},
}

# Every handler redacts sign-in link secrets (portal.core.logs). Django's own loggers are
# routed to these handlers instead of Django's defaults, which carry no such filter
# (django.request logs the path of every 4xx answer; runserver logs every request line).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "portal.core.logs.RedactSecrets"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}
