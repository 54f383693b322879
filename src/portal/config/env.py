"""Read the portal's configuration from the environment: the one reader of ``os.environ``.

Every variable the portal understands is declared here with its default, so the README
table and the code cannot drift apart unnoticed (``tests/config/test_env.py`` checks the
README names every variable).  A bad value raises ``ConfigError`` whose message names the
variable; ``portal`` prints that one line and exits instead of showing a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import dj_database_url

from portal.core.rates import Rate

BASE_DIR = Path(__file__).resolve().parents[3]
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", "").strip() or BASE_DIR / "var")

# A development key is fine on a laptop; production mode refuses to start with it.
DEV_SECRET_KEY = "dev-insecure-key-do-not-use-in-production"  # noqa: S105

SMTP_TLS_MODES = ("starttls", "tls", "none")


class ConfigError(Exception):
    """A variable of the environment has a value the portal cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    help: str


# name, default, what it does: the README's configuration table is written from this list.
VARIABLES: tuple[Variable, ...] = (
    Variable("PORTAL_SECRET_KEY", "(development key)", "Signs sessions and keys HMACs. "
             "Required, and not the development key, when PORTAL_DEBUG is off."),
    Variable("PORTAL_DEBUG", "false", "Development mode: debug pages, plain-HTTP cookies (no "
             "`Secure`, no `__Host-` prefix). `make run` turns it on."),
    Variable("DATABASE_URL", "sqlite:///var/portal.sqlite3", "Database. "
             "`postgres://user@host:5432/name` in production."),
    Variable("REDIS_URL", "(unset)", "Redis for rate limits and the cache. Unset: both live "
             "in the database."),
    Variable("PORTAL_BASE_URL", "http://127.0.0.1:8000", "Public address of the portal, used "
             "in emails and OpenID redirect URIs."),
    Variable("PORTAL_ALLOWED_HOSTS", "(host of PORTAL_BASE_URL)", "Comma-separated host names "
             "the portal answers to."),
    Variable("SMTP_HOST", "127.0.0.1", "Mail relay the worker sends through."),
    Variable("SMTP_PORT", "25", "Its port."),
    Variable("SMTP_USERNAME", "(unset)", "Login for the relay, if it wants one."),
    Variable("SMTP_PASSWORD", "(unset)", "Password for the relay."),
    Variable("SMTP_TLS", "starttls", "`starttls`, `tls` (implicit TLS, usually port 465) or "
             "`none`."),
    Variable("SMTP_TIMEOUT_SECONDS", "20", "How long one SMTP conversation may take."),
    Variable("PORTAL_FROM_EMAIL", "Cloud Sentry <noreply@cloudsentry.com>", "From address of "
             "every email."),
    Variable("PORTAL_BRAND", "Cloud Sentry", "Name shown on pages and in emails."),
    Variable("MAGIC_LINK_TTL_SECONDS", "900", "How long a sign-in link stays valid."),
    Variable("SIGNIN_LIMIT_PER_ADDRESS", "5/15m", "Link requests for one email address in "
             "any window: `N/[M]unit`, unit `s`, `m`, `h` or `d` (5 in any 15 minutes)."),
    Variable("SIGNIN_LIMIT_PER_DEVICE", "5/15m", "Links for an address asked from a browser "
             "that has signed in as it before: its own allowance, so a stranger spending the "
             "address's allowance cannot lock the owner out."),
    Variable("SIGNIN_LIMIT_PER_IP", "50/15m", "Link requests from one client address (IPv6: "
             "one /64). Enough for one office behind one NAT address asking all at once."),
    Variable("SIGNIN_LIMIT_OVERALL", "600/m", "Link requests for the whole portal. Refused "
             "requests do not count."),
    Variable("SIGNIN_CODE_LIMIT_PER_IP", "20/15m", "One-time-code tries from one client "
             "address (IPv6: one /64), across all sign-in requests."),
    Variable("DKIM_SELECTOR", "(unset)", "DKIM selector; with DKIM_PRIVATE_KEY_FILE, outgoing "
             "mail is signed."),
    Variable("DKIM_PRIVATE_KEY_FILE", "(unset)", "PEM file of the DKIM private key."),
    Variable("DKIM_DOMAIN", "(domain of PORTAL_FROM_EMAIL)", "Signing domain (d=)."),
    Variable("SESSION_IDLE_SECONDS", "28800", "A session unused this long ends (8 hours)."),
    Variable("SESSION_MAX_SECONDS", "1209600", "No session lives longer than this (14 days)."),
    Variable("GOOGLE_CLIENT_ID", "(unset)", "Turns on Sign in with Google."),
    Variable("GOOGLE_CLIENT_SECRET", "(unset)", "Its client secret."),
    Variable("GOOGLE_DISCOVERY_URL",
             "https://accounts.google.com/.well-known/openid-configuration",
             "Override for tests and private deployments."),
    Variable("MICROSOFT_CLIENT_ID", "(unset)", "Turns on Sign in with Microsoft."),
    Variable("MICROSOFT_CLIENT_SECRET", "(unset)", "Its client secret."),
    Variable("MICROSOFT_DISCOVERY_URL",
             "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
             "Override for tests and private deployments."),
    Variable("PORTAL_DEV_MAIL_DIR", "(unset)", "Development only: the mail catcher's Maildir, "
             "shown at /dev/mail/. `make run` sets it."),
    Variable("PORTAL_VAR_DIR", "var/ in the checkout", "Where the embedded SQLite database and "
             "collected static files live."),
    Variable("PORTAL_BIND", "127.0.0.1:8000", "Address `portal serve` listens on."),
    Variable("WEB_CONCURRENCY", "2", "Number of web processes `portal serve` starts."),
    Variable("FORWARDED_ALLOW_IPS", "127.0.0.1", "Comma-separated addresses of the reverse "
             "proxies whose X-Forwarded-For and X-Forwarded-Proto are believed."),
)


def default_of(name: str) -> str:
    """Return the documented default of a variable."""
    return next(v.default for v in VARIABLES if v.name == name)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0,
         maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"must be at most {maximum}, got {value}")
    return value


def _text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _split(name: str, raw: str) -> SplitResult:
    """Split a URL, turning urllib's ``ValueError`` (``http://[x``, a bad port) into ours."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise ConfigError(name, f"is not a valid URL ({exc}): {raw!r}") from None
    return parts


def _database(env: Mapping[str, str]) -> dict[str, object]:
    raw = _text(env, "DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
    scheme = _split("DATABASE_URL", raw).scheme
    if scheme not in ("sqlite", "postgres", "postgresql", "pgsql"):
        raise ConfigError("DATABASE_URL", f"expected sqlite:///PATH or postgres://…, got {raw!r}")
    try:
        # Health checks: a connection kept across a PostgreSQL restart is tested before use
        # instead of failing the first request after it.
        config: dict[str, object] = dict(dj_database_url.parse(raw, conn_max_age=60,
                                                               conn_health_checks=True))
    except Exception as exc:  # dj-database-url raises several types for a bad URL
        raise ConfigError("DATABASE_URL", f"cannot be read ({exc})") from None
    if scheme == "sqlite":
        config["CONN_MAX_AGE"] = 0
        # Wait for a competing writer (web and worker share the file) instead of failing.
        config["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE",
                             "init_command": "PRAGMA journal_mode=WAL;"}
    elif not config.get("NAME"):
        raise ConfigError("DATABASE_URL", "names no database")
    return config


def _redis(env: Mapping[str, str]) -> str:
    raw = _text(env, "REDIS_URL")
    if raw and _split("REDIS_URL", raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL", f"expected redis://host:port/db, got {raw!r}")
    return raw


def _base_url(env: Mapping[str, str]) -> str:
    raw = _text(env, "PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    parts = _split("PORTAL_BASE_URL", raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ConfigError("PORTAL_BASE_URL", f"expected http(s)://host[:port], got {raw!r}")
    if parts.path or parts.query or parts.fragment or any(ch.isspace() for ch in raw):
        raise ConfigError("PORTAL_BASE_URL", f"must be an origin without a path, got {raw!r}")
    return raw


def _discovery_url(env: Mapping[str, str], name: str) -> str:
    raw = _text(env, name, default_of(name))
    parts = _split(name, raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"expected an https:// URL, got {raw!r}")
    return raw


# Settings key of SIGNIN_RATE_LIMITS (what callers of portal.core.ratelimit read) and the
# variable that sets it.
SIGNIN_LIMIT_VARIABLES = {
    "address": "SIGNIN_LIMIT_PER_ADDRESS",
    "device": "SIGNIN_LIMIT_PER_DEVICE",
    "ip": "SIGNIN_LIMIT_PER_IP",
    "global": "SIGNIN_LIMIT_OVERALL",
    "code_ip": "SIGNIN_CODE_LIMIT_PER_IP",
}


def _signin_limits(env: Mapping[str, str]) -> dict[str, str]:
    """Return the sign-in rate limits, each checked by ``Rate.parse`` (the limiter's own)."""
    limits = {}
    for key, name in SIGNIN_LIMIT_VARIABLES.items():
        raw = _text(env, name, default_of(name))
        try:
            Rate.parse(raw)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None
        limits[key] = raw
    return limits


def _host_of(base_url: str) -> str:
    host = urlsplit(base_url).hostname or "127.0.0.1"
    # ALLOWED_HOSTS compares IPv6 literals in their bracketed form, as in the Host header.
    return f"[{host}]" if ":" in host else host


def _from_email(env: Mapping[str, str]) -> tuple[str, str]:
    """Return the From header value and its domain (the default DKIM signing domain)."""
    raw = _text(env, "PORTAL_FROM_EMAIL", "Cloud Sentry <noreply@cloudsentry.com>")
    # A line break here would let the value add headers to every email.
    if "\r" in raw or "\n" in raw:
        raise ConfigError("PORTAL_FROM_EMAIL", "must be on one line")
    _, address = parseaddr(raw)
    local, _, domain = address.rpartition("@")
    if not local or not domain or "." not in domain or "@" in local:
        raise ConfigError("PORTAL_FROM_EMAIL",
                          f"expected an address like Name <me@example.com>, got {raw!r}")
    return raw, domain.lower()


@dataclass(frozen=True)
class Config:
    """Everything the portal reads from its environment, validated."""

    secret_key: str
    debug: bool
    database: dict[str, object]
    redis_url: str
    base_url: str
    allowed_hosts: list[str]
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_tls: str
    smtp_timeout: int
    from_email: str
    brand: str
    magic_link_ttl: int
    signin_limits: dict[str, str]  # SIGNIN_RATE_LIMITS: key -> rate string, e.g. "5/15m"
    dkim_selector: str
    dkim_private_key_file: str
    dkim_domain: str
    session_idle_seconds: int
    session_max_seconds: int
    google_client_id: str
    google_client_secret: str
    google_discovery_url: str
    microsoft_client_id: str
    microsoft_client_secret: str
    microsoft_discovery_url: str
    dev_mail_dir: str
    bind: str = "127.0.0.1:8000"
    web_concurrency: int = 2
    forwarded_allow_ips: str = "127.0.0.1"


def load(env: Mapping[str, str] | None = None) -> Config:
    """Validate the environment and return the configuration, or raise ``ConfigError``."""
    env = os.environ if env is None else env
    debug = _flag(env, "PORTAL_DEBUG", default=False)
    secret_key = _text(env, "PORTAL_SECRET_KEY")
    if not debug and (not secret_key or secret_key == DEV_SECRET_KEY):
        raise ConfigError("PORTAL_SECRET_KEY",
                          "set a long random value (production mode refuses to start without one)")
    if not debug and len(secret_key) < 32:
        raise ConfigError("PORTAL_SECRET_KEY", "use at least 32 characters")
    base_url = _base_url(env)
    hosts_raw = _text(env, "PORTAL_ALLOWED_HOSTS")
    allowed_hosts = [h.strip() for h in hosts_raw.split(",") if h.strip()] if hosts_raw else [
        _host_of(base_url)]
    smtp_tls = _text(env, "SMTP_TLS", "starttls").lower()
    if smtp_tls not in SMTP_TLS_MODES:
        raise ConfigError("SMTP_TLS", f"expected one of {', '.join(SMTP_TLS_MODES)}, "
                                      f"got {env.get('SMTP_TLS')!r}")
    from_email, default_dkim_domain = _from_email(env)
    dkim_selector = _text(env, "DKIM_SELECTOR")
    dkim_key = _text(env, "DKIM_PRIVATE_KEY_FILE")
    if bool(dkim_selector) != bool(dkim_key):
        raise ConfigError("DKIM_SELECTOR" if dkim_key else "DKIM_PRIVATE_KEY_FILE",
                          "DKIM signing needs both DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE")
    if dkim_key and not Path(dkim_key).is_file():
        raise ConfigError("DKIM_PRIVATE_KEY_FILE", f"no such file: {dkim_key}")
    return Config(
        secret_key=secret_key or DEV_SECRET_KEY,
        debug=debug,
        database=_database(env),
        redis_url=_redis(env),
        base_url=base_url,
        allowed_hosts=allowed_hosts,
        smtp_host=_text(env, "SMTP_HOST", "127.0.0.1"),
        smtp_port=_int(env, "SMTP_PORT", 25, minimum=1, maximum=65535),
        smtp_username=_text(env, "SMTP_USERNAME"),
        smtp_password=env.get("SMTP_PASSWORD", ""),
        smtp_tls=smtp_tls,
        smtp_timeout=_int(env, "SMTP_TIMEOUT_SECONDS", 20, minimum=1),
        from_email=from_email,
        brand=_text(env, "PORTAL_BRAND", "Cloud Sentry"),
        magic_link_ttl=_int(env, "MAGIC_LINK_TTL_SECONDS", 900, minimum=60),
        signin_limits=_signin_limits(env),
        dkim_selector=dkim_selector,
        dkim_private_key_file=dkim_key,
        dkim_domain=_text(env, "DKIM_DOMAIN", default_dkim_domain),
        session_idle_seconds=_int(env, "SESSION_IDLE_SECONDS", 8 * 3600, minimum=60),
        session_max_seconds=_int(env, "SESSION_MAX_SECONDS", 14 * 86400, minimum=60),
        google_client_id=_text(env, "GOOGLE_CLIENT_ID"),
        google_client_secret=env.get("GOOGLE_CLIENT_SECRET", ""),
        google_discovery_url=_discovery_url(env, "GOOGLE_DISCOVERY_URL"),
        microsoft_client_id=_text(env, "MICROSOFT_CLIENT_ID"),
        microsoft_client_secret=env.get("MICROSOFT_CLIENT_SECRET", ""),
        microsoft_discovery_url=_discovery_url(env, "MICROSOFT_DISCOVERY_URL"),
        dev_mail_dir=_text(env, "PORTAL_DEV_MAIL_DIR"),
        bind=_text(env, "PORTAL_BIND", "127.0.0.1:8000"),
        web_concurrency=_int(env, "WEB_CONCURRENCY", 2, minimum=1),
        forwarded_allow_ips=_text(env, "FORWARDED_ALLOW_IPS", "127.0.0.1"),
    )
