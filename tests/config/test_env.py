"""The environment is read in one place, and every bad value stops start-up by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from portal.config import env
from portal.config.env import DEV_SECRET_KEY, ConfigError, load

README = Path(__file__).resolve().parents[2] / "README.md"
DEV = {"PORTAL_DEBUG": "true"}
PROD = {"PORTAL_SECRET_KEY": "p" * 40, "PORTAL_BASE_URL": "https://portal.example.com"}

# A value the portal cannot use, for every variable that can have one.
BAD_VALUES: dict[str, list[str]] = {
    "PORTAL_SECRET_KEY": ["short"],
    "PORTAL_DEBUG": ["maybe", "2", "enabled"],
    "DATABASE_URL": ["postgres//x", "mysql://user@db.example/portal", "nonsense",
                     "postgres://db.example:notaport/portal", "postgres://db.example",
                     "postgres://[::1/portal"],
    "REDIS_URL": ["http://127.0.0.1:6379/0", "127.0.0.1:6379", "redis://[::1:6379"],
    "PORTAL_BASE_URL": ["portal.example.com", "ftp://portal.example.com",
                        "https://portal.example.com/portal", "https://portal.example.com?x=1",
                        "https://portal.example.com#top", "https://[::1", "https://",
                        "https://portal.example.com:99999", "https://user@portal.example.com"],
    "SMTP_PORT": ["twenty-five", "0", "70000", "25.0"],
    "SMTP_TLS": ["ssl", "yes", "STARTTLS-ish"],
    "SMTP_TIMEOUT_SECONDS": ["soon", "0"],
    "PORTAL_FROM_EMAIL": ["noreply", "Cloud Sentry <noreply@>", "a@b.c\r\nBcc: x@evil.example"],
    "MAGIC_LINK_TTL_SECONDS": ["15m", "10"],
    "INVITATION_TTL_SECONDS": ["7d", "3599", "2592001"],
    "SESSION_IDLE_SECONDS": ["eight hours", "-1"],
    "SESSION_MAX_SECONDS": ["2w", "0"],
    "RECENT_SIGN_IN_SECONDS": ["15m", "59"],
    "GOOGLE_DISCOVERY_URL": ["accounts.google.com", "file:///etc/passwd"],
    "MICROSOFT_DISCOVERY_URL": ["login.microsoftonline.com", "https://[bad"],
    "WEB_CONCURRENCY": ["many", "0"],
    "DKIM_PRIVATE_KEY_FILE": ["/nonexistent/dkim.pem"],  # with a selector, see below
    "SIGNIN_LIMIT_PER_ADDRESS": ["5", "5/15", "0/15m", "5/0m", "five/15m", "5 per 15m"],
    "SIGNIN_LIMIT_PER_DEVICE": ["5/15x", "-5/15m", "5/15m/device"],
    "SIGNIN_LIMIT_PER_IP": ["50", "50/1.5m", "50/15M", "10000000/15m"],
    "SIGNIN_LIMIT_OVERALL": ["600/minute", "600/31d", "\uff16\uff10\uff10/m"],
    "SIGNIN_CODE_LIMIT_PER_IP": ["20/", "/15m", "20/15m\nx"],
    "FORWARDED_ALLOW_IPS": ["*", "proxy.internal", "10.0.0.300", "10.0.0.1/24", "10.0.0.0/33",
                            "10.0.0.1 10.0.0.2", "10.0.0.1:8080", " , "],
    "PORTAL_ALLOW_INSECURE_HTTP": ["maybe"],
    "SMTP_ALLOW_UNENCRYPTED": ["sometimes"],
    "ATTACHMENT_MAX_BYTES": ["10MB", "100", "-1"],
    "ATTACHMENT_MAX_FILES": ["five", "0", "21"],
    "ATTACHMENT_STORAGE": ["ftp", "minio", "s3 bucket"],
    "AWS_S3_ENDPOINT_URL": ["minio.internal:9000", "ftp://minio.internal", "https://[bad"],
    "METRICS_TOKEN": ["short-token", "x" * 20 + " " + "y" * 20, "t" * 31, "t" * 31 + "\x07"],
}

# Free text: any value is acceptable, so the check is that the value is read, where it goes.
FREE_TEXT: dict[str, tuple[str, str]] = {
    "PORTAL_ALLOWED_HOSTS": ("portal.example.com", "allowed_hosts"),
    "SMTP_HOST": ("relay.example.com", "smtp_host"),
    "SMTP_USERNAME": ("mailer", "smtp_username"),
    "SMTP_PASSWORD": (" spaces kept ", "smtp_password"),
    "PORTAL_BRAND": ("Northwind IT", "brand"),
    "DKIM_DOMAIN": ("mail.example.com", "dkim_domain"),
    "GOOGLE_CLIENT_ID": ("google-id", "google_client_id"),
    "GOOGLE_CLIENT_SECRET": ("google-secret", "google_client_secret"),
    "MICROSOFT_CLIENT_ID": ("ms-id", "microsoft_client_id"),
    "MICROSOFT_CLIENT_SECRET": ("ms-secret", "microsoft_client_secret"),
    "PORTAL_DEV_MAIL_DIR": ("/tmp/mail", "dev_mail_dir"),
    "PORTAL_BIND": ("0.0.0.0:9000", "bind"),
}
# Read once at import (where the SQLite file lives); checked in a subprocess in test_cli.py.
READ_AT_IMPORT = {"PORTAL_VAR_DIR"}
# Valid only in pairs; the DKIM tests below check both halves, the attachment storage test
# the folder and the bucket's variables.
PAIRED = {"DKIM_SELECTOR", "ATTACHMENT_DIR", "AWS_STORAGE_BUCKET_NAME", "AWS_S3_REGION_NAME",
          "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def _bad_cases(*, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(name, value) for name, values in BAD_VALUES.items() for value in values
            if name not in skip]


def test_every_variable_is_checked_by_this_module() -> None:
    declared = {v.name for v in env.VARIABLES}
    covered = set(BAD_VALUES) | set(FREE_TEXT) | READ_AT_IMPORT | PAIRED
    assert declared - covered == set(), "add the new variable to BAD_VALUES or FREE_TEXT"
    assert covered - declared == set(), "a tested variable is missing from env.VARIABLES"


def test_development_defaults_load_without_any_variable() -> None:
    config = load(DEV)
    assert config.debug is True
    assert config.secret_key == DEV_SECRET_KEY
    assert config.database["ENGINE"] == "django.db.backends.sqlite3"
    assert config.smtp_tls == "starttls"
    assert config.smtp_port == 25
    assert config.magic_link_ttl == 900
    assert config.allowed_hosts == ["127.0.0.1"]


@pytest.mark.parametrize(("variable", "value"), _bad_cases())
def test_bad_value_raises_config_error_naming_the_variable(variable: str, value: str) -> None:
    environment = {**PROD, variable: value}
    if variable == "DKIM_PRIVATE_KEY_FILE":
        environment["DKIM_SELECTOR"] = "portal"
    with pytest.raises(ConfigError) as caught:
        load(environment)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


# Development mode accepts any secret key: nothing is at stake on a laptop.
@pytest.mark.parametrize(("variable", "value"), _bad_cases(skip=("PORTAL_SECRET_KEY",)))
def test_bad_value_is_refused_in_development_mode_too(variable: str, value: str) -> None:
    environment = {**DEV, variable: value}
    if variable == "PORTAL_DEBUG":
        environment = {variable: value}
    if variable == "DKIM_PRIVATE_KEY_FILE":
        environment["DKIM_SELECTOR"] = "portal"
    with pytest.raises(ConfigError) as caught:
        load(environment)
    assert caught.value.variable == variable


@pytest.mark.parametrize(("variable", "value_and_field"), FREE_TEXT.items())
def test_free_text_variable_is_read(variable: str, value_and_field: tuple[str, str]) -> None:
    value, field = value_and_field
    read = getattr(load({**DEV, variable: value}), field)
    expected = value if variable == "SMTP_PASSWORD" else value.strip()
    assert read == ([expected] if isinstance(read, list) else expected)


def test_signin_limits_default_to_the_documented_rates() -> None:
    assert load(DEV).signin_limits == {"address": "5/15m", "device": "5/15m", "ip": "50/15m",
                                       "global": "600/m", "code_ip": "20/15m"}
    assert {key: env.default_of(name) for key, name in env.SIGNIN_LIMIT_VARIABLES.items()} == (
        load(DEV).signin_limits)


@pytest.mark.parametrize(("variable", "key"), [
    (name, key) for key, name in env.SIGNIN_LIMIT_VARIABLES.items()])
def test_each_signin_limit_is_read_from_its_variable(variable: str, key: str) -> None:
    limits = load({**DEV, variable: " 7/2h "}).signin_limits
    assert limits[key] == "7/2h"
    assert [k for k, rate in limits.items() if rate == "7/2h"] == [key]


def test_dkim_selector_without_key_names_the_key_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load({**PROD, "DKIM_SELECTOR": "portal"})
    assert caught.value.variable == "DKIM_PRIVATE_KEY_FILE"


def test_dkim_key_without_selector_names_the_selector(tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        load({**PROD, "DKIM_PRIVATE_KEY_FILE": str(key)})
    assert caught.value.variable == "DKIM_SELECTOR"


def test_dkim_fully_configured_signs_for_the_from_domain_by_default(tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    config = load({**PROD, "DKIM_SELECTOR": "portal", "DKIM_PRIVATE_KEY_FILE": str(key),
                   "PORTAL_FROM_EMAIL": "Northwind IT <it@Northwind.example>"})
    assert (config.dkim_selector, config.dkim_domain) == ("portal", "northwind.example")


def test_production_mode_refuses_to_start_without_a_secret_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load({})
    assert caught.value.variable == "PORTAL_SECRET_KEY"


def test_production_mode_refuses_the_development_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"PORTAL_SECRET_KEY": DEV_SECRET_KEY})
    assert caught.value.variable == "PORTAL_SECRET_KEY"


def test_production_mode_is_the_default_when_portal_debug_is_unset_or_empty() -> None:
    assert load(PROD).debug is False
    assert load({**PROD, "PORTAL_DEBUG": ""}).debug is False


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), ("on", True),
                                               ("yes", True), ("0", False), ("off", False),
                                               ("False", False), (" no ", False)])
def test_portal_debug_accepts_the_usual_spellings(raw: str, expected: bool) -> None:
    assert load({**PROD, "PORTAL_DEBUG": raw}).debug is expected


@pytest.mark.parametrize("url", ["postgres://portal@db.example:5432/portal",
                                 "postgresql://portal:secret@db.example/portal"])
def test_postgres_url_keeps_connections_with_health_checks(url: str) -> None:
    database = load({**PROD, "DATABASE_URL": url}).database
    assert database["ENGINE"] == "portal.core.postgresql"
    assert database["NAME"] == "portal"
    assert database["CONN_HEALTH_CHECKS"] is True


def test_sqlite_url_waits_for_a_competing_writer(tmp_path: Path) -> None:
    database = load({**PROD, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}).database
    assert database["NAME"] == str(tmp_path / "x.sqlite3")
    assert database["OPTIONS"] == {"timeout": 20, "transaction_mode": "IMMEDIATE",
                                   "init_command": "PRAGMA journal_mode=WAL;"}


def test_allowed_hosts_default_to_the_base_url_host() -> None:
    assert load({**PROD, "PORTAL_BASE_URL": "https://portal.example.com/"}).allowed_hosts == [
        "portal.example.com"]
    # Django compares IPv6 literals in brackets, as the Host header carries them.
    assert load({**PROD, "PORTAL_BASE_URL": "http://[::1]:8000",
                 "PORTAL_ALLOW_INSECURE_HTTP": "true"}).allowed_hosts == ["[::1]"]


def test_allowed_hosts_split_on_commas() -> None:
    config = load({**PROD, "PORTAL_ALLOWED_HOSTS": " a.example , b.example,,"})
    assert config.allowed_hosts == ["a.example", "b.example"]


def test_base_url_loses_its_trailing_slash() -> None:
    assert load({**PROD, "PORTAL_BASE_URL": "https://portal.example.com/"}).base_url == (
        "https://portal.example.com")


def test_smtp_tls_is_case_insensitive() -> None:
    assert load({**PROD, "SMTP_TLS": "TLS"}).smtp_tls == "tls"


def test_config_is_frozen() -> None:
    config = load(DEV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.debug = False


def test_readme_documents_every_variable() -> None:
    text = README.read_text() if README.exists() else ""
    missing = [v.name for v in env.VARIABLES if v.name not in text]
    assert not missing, (
        "README.md must document every variable in portal.config.env.VARIABLES "
        f"(its configuration table is written from that list); missing: {', '.join(missing)}"
        + ("" if README.exists() else " (README.md does not exist yet)"))


def test_readme_table_is_the_one_written_from_variables() -> None:
    # Defaults and descriptions have one home (env.VARIABLES); the README shows them as is.
    assert env.table() in README.read_text(), (
        "README.md's configuration table differs from portal.config.env.table(); paste "
        "the output of: python -c 'from portal.config.env import table; print(table())'")


def test_every_default_is_the_value_load_uses() -> None:
    config = load(DEV)
    literal = {
        "PORTAL_BASE_URL": config.base_url,
        "SMTP_HOST": config.smtp_host, "SMTP_PORT": config.smtp_port,
        "SMTP_TLS": config.smtp_tls, "SMTP_TIMEOUT_SECONDS": config.smtp_timeout,
        "PORTAL_FROM_EMAIL": config.from_email, "PORTAL_BRAND": config.brand,
        "MAGIC_LINK_TTL_SECONDS": config.magic_link_ttl,
        "INVITATION_TTL_SECONDS": config.invitation_ttl,
        "SESSION_IDLE_SECONDS": config.session_idle_seconds,
        "SESSION_MAX_SECONDS": config.session_max_seconds,
        "RECENT_SIGN_IN_SECONDS": config.recent_sign_in_seconds,
        "GOOGLE_DISCOVERY_URL": config.google_discovery_url,
        "MICROSOFT_DISCOVERY_URL": config.microsoft_discovery_url,
        "PORTAL_BIND": config.bind, "WEB_CONCURRENCY": config.web_concurrency,
        "PORTAL_SECRET_KEY": config.secret_key, "REDIS_URL": config.redis_url,
    }
    for name, value in literal.items():
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        assert shown == env.default_of(name), name
    assert config.database["NAME"] == env.default_of("DATABASE_URL").removeprefix("sqlite:///")
    assert ",".join(str(n.network_address) for n in config.forwarded_allow_ips) == (
        env.default_of("FORWARDED_ALLOW_IPS"))


def test_an_undeclared_variable_has_no_default() -> None:
    with pytest.raises(KeyError):
        env.default_of("PORTAL_NOT_A_VARIABLE")


@pytest.mark.parametrize(("raw", "expected"), [
    ("10.0.0.5", ["10.0.0.5/32"]),
    (" 10.0.0.0/24 , 2001:db8::/64 ", ["10.0.0.0/24", "2001:db8::/64"]),
    ("127.0.0.1,::1", ["127.0.0.1/32", "::1/128"]),
])
def test_forwarded_allow_ips_are_parsed_once_into_networks(raw: str,
                                                           expected: list[str]) -> None:
    networks = load({**PROD, "FORWARDED_ALLOW_IPS": raw}).forwarded_allow_ips
    assert [str(network) for network in networks] == expected


def test_forwarded_allow_ips_error_names_the_bad_entry() -> None:
    with pytest.raises(ConfigError) as caught:
        load({**PROD, "FORWARDED_ALLOW_IPS": "10.0.0.5,proxy.internal"})
    assert "'proxy.internal'" in str(caught.value)
    assert "\n" not in str(caught.value)


# Production refuses to send sign-in links in clear text (issue 9, item 7).
@pytest.mark.parametrize("base_url", ["http://portal.example.com", "http://127.0.0.1:8000"])
def test_production_refuses_an_http_base_url(base_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**PROD, "PORTAL_BASE_URL": base_url})
    assert caught.value.variable == "PORTAL_BASE_URL"
    assert "PORTAL_ALLOW_INSECURE_HTTP" in str(caught.value)


def test_production_refuses_the_default_base_url() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"PORTAL_SECRET_KEY": "p" * 40})
    assert caught.value.variable == "PORTAL_BASE_URL"


def test_http_base_url_starts_with_the_override_or_in_development() -> None:
    assert load({**PROD, "PORTAL_BASE_URL": "http://portal.example.com",
                 "PORTAL_ALLOW_INSECURE_HTTP": "true"}).base_url == "http://portal.example.com"
    assert load({**DEV, "PORTAL_BASE_URL": "http://portal.example.com"}).debug is True


@pytest.mark.parametrize("relay", ["smtp.relay.internal", "10.0.0.25", "2001:db8::25"])
def test_production_refuses_unencrypted_smtp_to_a_relay_off_loopback(relay: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**PROD, "SMTP_TLS": "none", "SMTP_HOST": relay})
    assert caught.value.variable == "SMTP_TLS"
    assert relay in str(caught.value)
    assert "SMTP_ALLOW_UNENCRYPTED" in str(caught.value)


@pytest.mark.parametrize("relay", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_unencrypted_smtp_to_loopback_is_allowed(relay: str) -> None:
    assert load({**PROD, "SMTP_TLS": "none", "SMTP_HOST": relay}).smtp_tls == "none"


def test_unencrypted_smtp_off_loopback_starts_with_the_override() -> None:
    config = load({**PROD, "SMTP_TLS": "none", "SMTP_HOST": "smtp.relay.internal",
                   "SMTP_ALLOW_UNENCRYPTED": "true"})
    assert (config.smtp_tls, config.smtp_host) == ("none", "smtp.relay.internal")


def test_the_http_override_does_not_allow_unencrypted_smtp() -> None:
    with pytest.raises(ConfigError) as caught:
        load({**PROD, "PORTAL_ALLOW_INSECURE_HTTP": "true", "SMTP_TLS": "none",
              "SMTP_HOST": "smtp.relay.internal"})
    assert caught.value.variable == "SMTP_TLS"


def test_attachment_storage_is_a_folder_or_a_bucket() -> None:
    folder = load({**DEV, "ATTACHMENT_DIR": "/srv/portal/files"}).attachment_storage
    assert folder["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert folder["OPTIONS"]["location"] == "/srv/portal/files"
    bucket = load({**DEV, "ATTACHMENT_STORAGE": "S3", "AWS_STORAGE_BUCKET_NAME": "files",
                   "AWS_S3_ENDPOINT_URL": "https://minio.internal:9000",
                   "AWS_S3_REGION_NAME": "eu-west-1", "AWS_ACCESS_KEY_ID": "portal",
                   "AWS_SECRET_ACCESS_KEY": " secret "}).attachment_storage
    assert bucket["BACKEND"] == "storages.backends.s3.S3Storage"
    options = bucket["OPTIONS"]
    assert {key: options[key] for key in ("bucket_name", "endpoint_url", "region_name",
                                          "access_key", "secret_key", "default_acl")} == {
        "bucket_name": "files", "endpoint_url": "https://minio.internal:9000",
        "region_name": "eu-west-1", "access_key": "portal", "secret_key": " secret ",
        "default_acl": None}
    with pytest.raises(ConfigError) as caught:
        load({**DEV, "ATTACHMENT_STORAGE": "s3"})
    assert caught.value.variable == "AWS_STORAGE_BUCKET_NAME"
