"""``portal`` as an operator runs it: one line for a bad variable, secure defaults otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portal.config.env import DEV_SECRET_KEY
from tests.config.portal_cli import PRODUCTION, run_portal

PRINT_SETTINGS = (
    "import json; from django.conf import settings as s; print(json.dumps({name: getattr(s, name)"
    " for name in ('DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS',"
    " 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_HTTPONLY',"
    " 'SECURE_PROXY_SSL_HEADER', 'ALLOWED_HOSTS', 'CSRF_TRUSTED_ORIGINS', 'STATIC_ROOT',"
    " 'SESSION_ENGINE', 'X_FRAME_OPTIONS')}, default=str))"
)


def _settings(tmp_path: Path, **variables: str) -> dict[str, object]:
    result = run_portal("shell", "-c", PRINT_SETTINGS, PORTAL_VAR_DIR=str(tmp_path), **variables)
    assert result.returncode == 0, result.stderr
    printed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return printed


@pytest.mark.parametrize(("variable", "value"), [
    ("SMTP_TLS", "ssl"),
    ("DATABASE_URL", "postgres//x"),
    ("DATABASE_URL", "mysql://portal@db.example/portal"),
    ("DATABASE_URL", "nonsense"),
    ("SMTP_PORT", "twenty-five"),
    ("PORTAL_DEBUG", "maybe"),
    ("PORTAL_BASE_URL", "https://[::1"),
    ("DKIM_SELECTOR", "portal"),
    ("WEB_CONCURRENCY", "lots"),
    ("SIGNIN_LIMIT_PER_IP", "50"),
    ("FORWARDED_ALLOW_IPS", "proxy.internal"),
    # Production refuses to send sign-in links in clear text (issue 9, item 7).
    ("PORTAL_BASE_URL", "http://portal.example.com"),
    ("SMTP_TLS", "none"),
])
def test_bad_variable_stops_portal_with_one_line_naming_it(variable: str, value: str) -> None:
    expect = "DKIM_PRIVATE_KEY_FILE" if variable == "DKIM_SELECTOR" else variable
    result = run_portal("check", **{**PRODUCTION, "SMTP_HOST": "smtp.relay.example",
                                    variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("portal: configuration error: ")
    assert expect in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("key", [None, "", DEV_SECRET_KEY, "too-short"])
def test_production_mode_refuses_to_start_without_a_proper_secret_key(key: str | None) -> None:
    variables = {} if key is None else {"PORTAL_SECRET_KEY": key}
    result = run_portal("check", **variables)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "PORTAL_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_mode_has_secure_cookies_and_hsts(tmp_path: Path) -> None:
    printed = _settings(tmp_path, **PRODUCTION)
    assert printed["DEBUG"] is False
    assert printed["SESSION_COOKIE_SECURE"] is True
    assert printed["CSRF_COOKIE_SECURE"] is True
    assert isinstance(printed["SECURE_HSTS_SECONDS"], int)
    assert printed["SECURE_HSTS_SECONDS"] > 0
    assert printed["SESSION_COOKIE_HTTPONLY"] is True
    assert printed["CSRF_COOKIE_HTTPONLY"] is True
    assert printed["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert printed["X_FRAME_OPTIONS"] == "DENY"
    # Server-side sessions: signing out deletes the row, so a copied cookie dies too.
    assert printed["SESSION_ENGINE"] == "portal.core.session_store"
    with_redis = _settings(tmp_path, **PRODUCTION, REDIS_URL="redis://127.0.0.1:6379/9")
    # With Redis, the database rows stay the record and Redis serves them (decision 0020).
    assert with_redis["SESSION_ENGINE"] == "portal.core.session_store_cached"
    # Only the configured host; no loopback names sneak in outside development.
    assert printed["ALLOWED_HOSTS"] == ["portal.example.com"]
    assert printed["CSRF_TRUSTED_ORIGINS"] == ["https://portal.example.com"]


def test_development_mode_relaxes_only_what_plain_http_needs(tmp_path: Path) -> None:
    printed = _settings(tmp_path, PORTAL_DEBUG="true")
    assert printed["DEBUG"] is True
    assert printed["SESSION_COOKIE_SECURE"] is False
    assert printed["SECURE_HSTS_SECONDS"] == 0
    assert printed["SESSION_COOKIE_HTTPONLY"] is True
    assert "localhost" in printed["ALLOWED_HOSTS"]


def test_portal_var_dir_moves_the_state_folder(tmp_path: Path) -> None:
    printed = _settings(tmp_path, PORTAL_DEBUG="true")
    assert printed["STATIC_ROOT"] == str(tmp_path / "static")


def test_diffsettings_runs_in_production_mode(tmp_path: Path) -> None:
    result = run_portal("diffsettings", PORTAL_VAR_DIR=str(tmp_path), **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "SESSION_COOKIE_SECURE = True" in result.stdout


def test_signin_limits_reach_the_settings_from_the_environment(tmp_path: Path) -> None:
    result = run_portal("shell", "-c", "import json; from django.conf import settings; "
                        "print(json.dumps(settings.SIGNIN_RATE_LIMITS))",
                        PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path),
                        SIGNIN_LIMIT_PER_IP="80/15m", SIGNIN_LIMIT_OVERALL="1000/m")
    assert result.returncode == 0, result.stderr
    limits = json.loads(result.stdout.strip().splitlines()[-1])
    assert (limits["ip"], limits["global"], limits["address"]) == ("80/15m", "1000/m", "5/15m")


@pytest.mark.parametrize(("insecure", "override"), [
    ({"PORTAL_BASE_URL": "http://portal.example.com"}, {"PORTAL_ALLOW_INSECURE_HTTP": "true"}),
    ({"SMTP_TLS": "none", "SMTP_HOST": "smtp.relay.example"}, {"SMTP_ALLOW_UNENCRYPTED": "true"}),
])
def test_insecure_transport_starts_only_with_its_documented_override(
        insecure: dict[str, str], override: dict[str, str]) -> None:
    refused = run_portal("check", **{**PRODUCTION, **insecure})
    assert refused.returncode == 2, refused.stderr
    allowed = run_portal("check", **{**PRODUCTION, **insecure, **override})
    assert allowed.returncode == 0, allowed.stderr
    assert "Traceback" not in allowed.stderr
