"""Read the portal's configuration from the environment: the one reader of ``os.environ``.

Every variable the portal understands is declared once in ``VARIABLES``, with the default
``load`` uses and the words the README shows, so the README table and the code cannot
drift apart unnoticed (``tests/config/test_env.py`` compares the README with ``table()``).
A bad value raises ``ConfigError`` whose message names the variable; ``portal`` prints
that one line and exits instead of showing a traceback.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import dj_database_url

from portal.core.rates import Rate

BASE_DIR = Path(__file__).resolve().parents[3]
_DEFAULT_VAR_DIR = BASE_DIR / "var"
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", "").strip() or _DEFAULT_VAR_DIR)

# A development key is fine on a laptop; production mode refuses to start with it.
DEV_SECRET_KEY = "dev-insecure-key-do-not-use-in-production"  # noqa: S105

SMTP_TLS_MODES = ("starttls", "tls", "none")
ATTACHMENT_STORAGES = ("filesystem", "s3")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """A variable of the environment has a value the portal cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Variable:
    """One variable: its name, the value used when it is unset, what it does.

    ``default`` is the one home of the default: ``load`` reads it from here. ``shown`` is
    how the README states a default that is not a literal value ("(host of …)").
    """

    name: str
    default: str
    help: str
    shown: str = ""

    @property
    def documented_default(self) -> str:
        """Return the default as the README's configuration table shows it."""
        if self.shown:
            return self.shown
        return f"`{self.default}`" if self.default else "(unset)"


# The README's configuration table is written from this list (``table()``; a test compares).
VARIABLES: tuple[Variable, ...] = (
    Variable("PORTAL_SECRET_KEY", DEV_SECRET_KEY, "Signs sessions and keys HMACs. "
             "Required, and not the development key, when PORTAL_DEBUG is off.",
             shown="(development key)"),
    Variable("PORTAL_DEBUG", "false", "Development mode: debug pages, plain-HTTP cookies (no "
             "`Secure`, no `__Host-` prefix). `make run` turns it on."),
    Variable("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}", "Database. "
             "`postgres://user@host:5432/name` in production.",
             shown="SQLite: `portal.sqlite3` in PORTAL_VAR_DIR"),
    Variable("REDIS_URL", "", "Redis for rate limits, the cache and a copy of each session "
             "(pages read sessions from it; the database keeps them). Unset: all live in "
             "the database."),
    Variable("PORTAL_BASE_URL", "http://127.0.0.1:8000", "Public address of the portal, used "
             "in emails and OpenID redirect URIs. Must be `https://` when PORTAL_DEBUG is off."),
    Variable("PORTAL_ALLOW_INSECURE_HTTP", "false", "Lets production mode start with an "
             "`http://` PORTAL_BASE_URL, so sign-in links travel in clear text. Only for "
             "plain-HTTP test setups on one machine (the test suite sets it)."),
    Variable("PORTAL_ALLOWED_HOSTS", "", "Comma-separated host names the portal answers to.",
             shown="(host of PORTAL_BASE_URL)"),
    Variable("SMTP_HOST", "127.0.0.1", "Mail relay the worker sends through."),
    Variable("SMTP_PORT", "25", "Its port."),
    Variable("SMTP_USERNAME", "", "Login for the relay, if it wants one."),
    Variable("SMTP_PASSWORD", "", "Password for the relay."),
    Variable("SMTP_TLS", "starttls", "`starttls`, `tls` (implicit TLS, usually port 465) or "
             "`none`. `none` is refused in production mode unless the relay is on loopback."),
    Variable("SMTP_ALLOW_UNENCRYPTED", "false", "Lets production mode use `SMTP_TLS=none` with "
             "a relay that is not on loopback (mail, sign-in links included, crosses the "
             "network in clear text). Only for a relay reached over a private, trusted link."),
    Variable("SMTP_TIMEOUT_SECONDS", "20", "How long one SMTP conversation may take."),
    Variable("PORTAL_FROM_EMAIL", "Cloud Sentry <noreply@cloudsentry.com>", "From address of "
             "every email."),
    Variable("PORTAL_BRAND", "Cloud Sentry", "Name shown on pages and in emails."),
    Variable("MAGIC_LINK_TTL_SECONDS", "900", "How long a sign-in link stays valid, in "
             "seconds; at least 300, so every accepted lifetime leaves the worker time to send "
             "(600 meets OWASP ASVS Level 2)."),
    Variable("INVITATION_TTL_SECONDS", "604800", "How long an organization admin's invitation "
             "link stays valid, in seconds (7 days); at least one hour, at most 30 days. It "
             "works once."),
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
    Variable("DKIM_SELECTOR", "", "DKIM selector; with DKIM_PRIVATE_KEY_FILE, outgoing "
             "mail is signed."),
    Variable("DKIM_PRIVATE_KEY_FILE", "", "PEM file of the DKIM private key."),
    Variable("DKIM_DOMAIN", "", "Signing domain (d=).", shown="(domain of PORTAL_FROM_EMAIL)"),
    Variable("SESSION_IDLE_SECONDS", "28800", "A session unused this long ends (8 hours)."),
    Variable("SESSION_MAX_SECONDS", "1209600", "No session lives longer than this (14 days)."),
    Variable("RECENT_SIGN_IN_SECONDS", "900", "Signing out other sessions and any change in "
             "the staff admin need a sign-in at most this old (15 minutes); after that the "
             "person is asked to sign in again first."),
    Variable("GOOGLE_CLIENT_ID", "", "Turns on Sign in with Google."),
    Variable("GOOGLE_CLIENT_SECRET", "", "Its client secret."),
    Variable("GOOGLE_DISCOVERY_URL",
             "https://accounts.google.com/.well-known/openid-configuration",
             "Override for tests and private deployments."),
    Variable("MICROSOFT_CLIENT_ID", "", "Turns on Sign in with Microsoft."),
    Variable("MICROSOFT_CLIENT_SECRET", "", "Its client secret."),
    Variable("MICROSOFT_DISCOVERY_URL",
             "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
             "Override for tests and private deployments."),
    Variable("PORTAL_DEV_MAIL_DIR", "", "Development only: the mail catcher's Maildir, "
             "shown at /dev/mail/. `make run` sets it."),
    Variable("PORTAL_VAR_DIR", str(_DEFAULT_VAR_DIR), "Where the embedded SQLite database and "
             "collected static files live.", shown="`var/` in the checkout"),
    Variable("PORTAL_BIND", "127.0.0.1:8000", "Address `portal serve` listens on."),
    Variable("WEB_CONCURRENCY", "2", "Number of web processes `portal serve` starts."),
    Variable("ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024), "Largest file a person may "
             "attach to a service request, in bytes (10 MB). Raise nginx's "
             "`client_max_body_size` with it (docs/operations.md).", shown="`10485760` (10 MB)"),
    Variable("ATTACHMENT_MAX_FILES", "5", "Most files one new request or one comment may "
             "carry."),
    Variable("ATTACHMENT_STORAGE", "filesystem", "Where attachments are kept: `filesystem` "
             "(ATTACHMENT_DIR) or `s3` (an S3-compatible bucket, AWS_STORAGE_BUCKET_NAME)."),
    Variable("ATTACHMENT_DIR", "", "Folder of the attachments with `ATTACHMENT_STORAGE="
             "filesystem`. Never serve it as a web folder: the portal serves each file after "
             "checking who asks.", shown="`attachments/` in PORTAL_VAR_DIR"),
    Variable("AWS_STORAGE_BUCKET_NAME", "", "Bucket of the attachments with "
             "`ATTACHMENT_STORAGE=s3`; keep it private (no public access, no website)."),
    Variable("AWS_S3_ENDPOINT_URL", "", "Endpoint of an S3-compatible store (MinIO, Ceph, "
             "another cloud's). Unset: Amazon S3."),
    Variable("AWS_S3_REGION_NAME", "", "Region of the bucket."),
    Variable("AWS_ACCESS_KEY_ID", "", "Access key for the bucket. Unset: boto3's usual "
             "sources (an instance or task role)."),
    Variable("AWS_SECRET_ACCESS_KEY", "", "Its secret."),
    Variable("FORWARDED_ALLOW_IPS", "127.0.0.1,::1", "Comma-separated addresses or networks "
             "(`10.0.0.0/24`) of the reverse proxies that connect to `portal serve`. Only "
             "their X-Forwarded-For and X-Forwarded-Proto are believed; name exactly the "
             "proxies, never a network clients can connect from."),
    Variable("METRICS_TOKEN", "", "Bearer token the monitoring system sends to read "
             "`/metrics` (Prometheus format; at least 32 characters). Unset: `/metrics` "
             "answers 404."),
)
_BY_NAME = {variable.name: variable for variable in VARIABLES}


def default_of(name: str) -> str:
    """Return the default of a declared variable (``KeyError`` for an undeclared one)."""
    return _BY_NAME[name].default


def table() -> str:
    """Return the README's configuration table, written from ``VARIABLES``."""
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    rows += [f"| `{v.name}` | {v.documented_default} | {v.help} |" for v in VARIABLES]
    return "\n".join(rows)


def _raw(env: Mapping[str, str], name: str) -> str:
    """Return the variable as given (spaces kept), or its default when unset or empty."""
    return env.get(name, "") or default_of(name)


def _text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip() or default_of(name)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = _text(env, name)
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected true or false, got {env.get(name)!r}")


def _int(env: Mapping[str, str], name: str, minimum: int = 0,
         maximum: int | None = None) -> int:
    raw = _text(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"must be at most {maximum}, got {value}")
    return value


def _split(name: str, raw: str) -> SplitResult:
    """Split a URL, turning urllib's ``ValueError`` (``http://[x``, a bad port) into ours."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise ConfigError(name, f"is not a valid URL ({exc}): {raw!r}") from None
    return parts


def _database(env: Mapping[str, str]) -> dict[str, object]:
    raw = _text(env, "DATABASE_URL")
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
    else:
        # Django's backend, with the health check only after a connection idled
        # (portal.core.postgresql, decision 0036).
        config["ENGINE"] = "portal.core.postgresql"
    return config


def _redis(env: Mapping[str, str]) -> str:
    raw = _text(env, "REDIS_URL")
    if raw and _split("REDIS_URL", raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL", f"expected redis://host:port/db, got {raw!r}")
    return raw


def _base_url(env: Mapping[str, str]) -> str:
    raw = _text(env, "PORTAL_BASE_URL").rstrip("/")
    parts = _split("PORTAL_BASE_URL", raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ConfigError("PORTAL_BASE_URL", f"expected http(s)://host[:port], got {raw!r}")
    if parts.path or parts.query or parts.fragment or any(ch.isspace() for ch in raw):
        raise ConfigError("PORTAL_BASE_URL", f"must be an origin without a path, got {raw!r}")
    return raw


def _discovery_url(env: Mapping[str, str], name: str) -> str:
    raw = _text(env, name)
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
        raw = _text(env, name)
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
    raw = _text(env, "PORTAL_FROM_EMAIL")
    # A line break here would let the value add headers to every email.
    if "\r" in raw or "\n" in raw:
        raise ConfigError("PORTAL_FROM_EMAIL", "must be on one line")
    _, address = parseaddr(raw)
    local, _, domain = address.rpartition("@")
    if not local or not domain or "." not in domain or "@" in local:
        raise ConfigError("PORTAL_FROM_EMAIL",
                          f"expected an address like Name <me@example.com>, got {raw!r}")
    return raw, domain.lower()


def _networks(env: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    """Parse comma-separated addresses and CIDR networks, refusing anything else by name."""
    networks = []
    for item in (part.strip() for part in _text(env, name).split(",")):
        if not item:
            continue
        if item == "*":
            # gunicorn accepts "*"; here it would let every client choose its own address.
            raise ConfigError(name, "name the proxies' addresses or networks; '*' would let "
                                    "any client choose the address the portal records")
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ConfigError(name, f"expected addresses or networks like 10.0.0.5 or "
                                    f"10.0.0.0/24, got {item!r} ({exc})") from None
    if not networks:
        raise ConfigError(name, "names no address")
    return tuple(networks)


def _attachment_storage(env: Mapping[str, str]) -> dict[str, object]:
    """Return ``STORAGES["attachments"]``: a private folder, or an S3-compatible bucket."""
    endpoint = _text(env, "AWS_S3_ENDPOINT_URL")
    # Checked whenever set, so a typo shows before the day the bucket is switched on.
    if endpoint:
        parts = _split("AWS_S3_ENDPOINT_URL", endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("AWS_S3_ENDPOINT_URL",
                              f"expected an https:// URL, got {endpoint!r}")
    kind = _text(env, "ATTACHMENT_STORAGE").lower()
    if kind not in ATTACHMENT_STORAGES:
        raise ConfigError("ATTACHMENT_STORAGE", f"expected one of {', '.join(ATTACHMENT_STORAGES)}"
                                                f", got {env.get('ATTACHMENT_STORAGE')!r}")
    if kind == "filesystem":
        folder = _text(env, "ATTACHMENT_DIR") or str(VAR_DIR / "attachments")
        # No URL serves this folder (the portal routes no media URL): attachments are only
        # ever served by the view that checks who asks.
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": folder,
                            "file_permissions_mode": 0o640,
                            "directory_permissions_mode": 0o750}}
    bucket = _text(env, "AWS_STORAGE_BUCKET_NAME")
    if not bucket:
        raise ConfigError("AWS_STORAGE_BUCKET_NAME", "ATTACHMENT_STORAGE=s3 needs a bucket")
    return {"BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint or None,
                "region_name": _text(env, "AWS_S3_REGION_NAME") or None,
                "access_key": _text(env, "AWS_ACCESS_KEY_ID") or None,
                "secret_key": _raw(env, "AWS_SECRET_ACCESS_KEY") or None,
                # Objects stay private: no public ACL, and a name is never reused (the
                # portal names them at random; a clash must fail, not overwrite).
                "default_acl": None, "file_overwrite": False,
                "object_parameters": {"ContentDisposition": "attachment"},
            }}
def _metrics_token(env: Mapping[str, str]) -> str:
    token = _text(env, "METRICS_TOKEN")
    if token and (len(token) < 32 or not token.isprintable() or " " in token):
        # A short token could be guessed against an endpoint anyone can reach.
        raise ConfigError("METRICS_TOKEN", "use at least 32 printable characters, no spaces")
    return token


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: where it points is not known until it is looked up


def _refuse_insecure_transport(env: Mapping[str, str], base_url: str, smtp_tls: str,
                               smtp_host: str) -> None:
    """Stop production mode from sending sign-in links in clear text, unless told to."""
    if urlsplit(base_url).scheme != "https" and not _flag(env, "PORTAL_ALLOW_INSECURE_HTTP"):
        raise ConfigError("PORTAL_BASE_URL", f"must start with https:// in production mode, "
                          f"got {base_url!r}: emailed sign-in links would travel in clear "
                          "text (PORTAL_ALLOW_INSECURE_HTTP=true allows it for a test setup)")
    if (smtp_tls == "none" and not _is_loopback(smtp_host)
            and not _flag(env, "SMTP_ALLOW_UNENCRYPTED")):
        raise ConfigError("SMTP_TLS", f"none would send mail, sign-in links included, in "
                          f"clear text to {smtp_host}; use starttls or tls (or set "
                          "SMTP_ALLOW_UNENCRYPTED=true for a relay on a private, trusted link)")


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
    invitation_ttl: int
    signin_limits: dict[str, str]  # SIGNIN_RATE_LIMITS: key -> rate string, e.g. "5/15m"
    dkim_selector: str
    dkim_private_key_file: str
    dkim_domain: str
    session_idle_seconds: int
    session_max_seconds: int
    recent_sign_in_seconds: int
    google_client_id: str
    google_client_secret: str
    google_discovery_url: str
    microsoft_client_id: str
    microsoft_client_secret: str
    microsoft_discovery_url: str
    dev_mail_dir: str
    bind: str
    web_concurrency: int
    # Parsed once here, so a request never parses it and a typo stops start-up by name.
    forwarded_allow_ips: tuple[IPNetwork, ...]
    attachment_max_bytes: int
    attachment_max_files: int
    attachment_storage: dict[str, object]  # STORAGES["attachments"]
    metrics_token: str


def load(env: Mapping[str, str] | None = None) -> Config:
    """Validate the environment and return the configuration, or raise ``ConfigError``."""
    env = os.environ if env is None else env
    debug = _flag(env, "PORTAL_DEBUG")
    secret_key = _text(env, "PORTAL_SECRET_KEY")  # unset: the development key
    if not debug and secret_key == DEV_SECRET_KEY:
        raise ConfigError("PORTAL_SECRET_KEY",
                          "set a long random value (production mode refuses to start without one)")
    if not debug and len(secret_key) < 32:
        raise ConfigError("PORTAL_SECRET_KEY", "use at least 32 characters")
    base_url = _base_url(env)
    hosts_raw = _text(env, "PORTAL_ALLOWED_HOSTS")
    allowed_hosts = [h.strip() for h in hosts_raw.split(",") if h.strip()] if hosts_raw else [
        _host_of(base_url)]
    smtp_tls = _text(env, "SMTP_TLS").lower()
    if smtp_tls not in SMTP_TLS_MODES:
        raise ConfigError("SMTP_TLS", f"expected one of {', '.join(SMTP_TLS_MODES)}, "
                                      f"got {env.get('SMTP_TLS')!r}")
    smtp_host = _text(env, "SMTP_HOST")
    from_email, from_domain = _from_email(env)
    dkim_selector = _text(env, "DKIM_SELECTOR")
    dkim_key = _text(env, "DKIM_PRIVATE_KEY_FILE")
    if bool(dkim_selector) != bool(dkim_key):
        raise ConfigError("DKIM_SELECTOR" if dkim_key else "DKIM_PRIVATE_KEY_FILE",
                          "DKIM signing needs both DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE")
    if dkim_key and not Path(dkim_key).is_file():
        raise ConfigError("DKIM_PRIVATE_KEY_FILE", f"no such file: {dkim_key}")
    config = Config(
        secret_key=secret_key,
        debug=debug,
        database=_database(env),
        redis_url=_redis(env),
        base_url=base_url,
        allowed_hosts=allowed_hosts,
        smtp_host=smtp_host,
        smtp_port=_int(env, "SMTP_PORT", minimum=1, maximum=65535),
        smtp_username=_text(env, "SMTP_USERNAME"),
        smtp_password=_raw(env, "SMTP_PASSWORD"),
        smtp_tls=smtp_tls,
        smtp_timeout=_int(env, "SMTP_TIMEOUT_SECONDS", minimum=1),
        from_email=from_email,
        brand=_text(env, "PORTAL_BRAND"),
        magic_link_ttl=_int(env, "MAGIC_LINK_TTL_SECONDS", minimum=300),
        invitation_ttl=_int(env, "INVITATION_TTL_SECONDS", minimum=3600, maximum=30 * 86400),
        signin_limits=_signin_limits(env),
        dkim_selector=dkim_selector,
        dkim_private_key_file=dkim_key,
        dkim_domain=_text(env, "DKIM_DOMAIN") or from_domain,
        session_idle_seconds=_int(env, "SESSION_IDLE_SECONDS", minimum=60),
        session_max_seconds=_int(env, "SESSION_MAX_SECONDS", minimum=60),
        recent_sign_in_seconds=_int(env, "RECENT_SIGN_IN_SECONDS", minimum=60),
        google_client_id=_text(env, "GOOGLE_CLIENT_ID"),
        google_client_secret=_raw(env, "GOOGLE_CLIENT_SECRET"),
        google_discovery_url=_discovery_url(env, "GOOGLE_DISCOVERY_URL"),
        microsoft_client_id=_text(env, "MICROSOFT_CLIENT_ID"),
        microsoft_client_secret=_raw(env, "MICROSOFT_CLIENT_SECRET"),
        microsoft_discovery_url=_discovery_url(env, "MICROSOFT_DISCOVERY_URL"),
        dev_mail_dir=_text(env, "PORTAL_DEV_MAIL_DIR"),
        bind=_text(env, "PORTAL_BIND"),
        web_concurrency=_int(env, "WEB_CONCURRENCY", minimum=1),
        forwarded_allow_ips=_networks(env, "FORWARDED_ALLOW_IPS"),
        attachment_max_bytes=_int(env, "ATTACHMENT_MAX_BYTES", minimum=1024),
        attachment_max_files=_int(env, "ATTACHMENT_MAX_FILES", minimum=1, maximum=20),
        attachment_storage=_attachment_storage(env),
        metrics_token=_metrics_token(env),
    )
    # Checked last, so a value that cannot be read at all is named before this refusal.
    _flag(env, "PORTAL_ALLOW_INSECURE_HTTP")
    _flag(env, "SMTP_ALLOW_UNENCRYPTED")
    if not debug:
        _refuse_insecure_transport(env, base_url, smtp_tls, smtp_host)
    return config
