"""No sign-in secret in any log: link paths are redacted on every handler (issue 9, item 5)."""

from __future__ import annotations

import logging
import sys

import pytest

import portal.config.settings as production
from portal.core.logs import REDACTED, RedactSecrets, redact
from portal.core.management.commands.serve import gunicorn_argv
from tests.config.portal_cli import PRODUCTION, run_portal

TOKEN = "Q2hlY2tpbmctdGhlLWxvZ3MtZm9yLWEtc2VjcmV0LXRva2Vu"


@pytest.mark.parametrize(("line", "expected"), [
    (f'"GET /signin/link/{TOKEN}/ HTTP/1.1" 302', f'"GET /signin/link/{REDACTED}/ HTTP/1.1" 302'),
    (f"Not Found: /signin/link/{TOKEN}/", f"Not Found: /signin/link/{REDACTED}/"),
    (f"/signin/link/{TOKEN}?utm=x", f"/signin/link/{REDACTED}?utm=x"),
    (f"/signin/link/{TOKEN}", f"/signin/link/{REDACTED}"),
    (f"https://portal.example/signin/link/{TOKEN}/ and /signin/link/{TOKEN[:9]}/",
     f"https://portal.example/signin/link/{REDACTED}/ and /signin/link/{REDACTED}/"),
    ("GET /signin/ 200", "GET /signin/ 200"),
    ("GET /signin/link-problem/ 410", "GET /signin/link-problem/ 410"),
])
def test_redact_removes_the_secret_of_every_link_path(line: str, expected: str) -> None:
    assert redact(line) == expected


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"no route for /signin/link/{TOKEN}/")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("django.request", logging.WARNING, __file__, 1, msg, args,
                             exc_info, sinfo=f"stack at /signin/link/{TOKEN}/")


def test_the_filter_redacts_message_arguments_traceback_and_stack() -> None:
    record = _record("Method Not Allowed (%s): %s", "POST", f"/signin/link/{TOKEN}/", exc=True)
    assert RedactSecrets().filter(record) is True
    formatted = logging.Formatter("%(message)s").format(record)
    assert TOKEN not in formatted
    assert f"Method Not Allowed (POST): /signin/link/{REDACTED}/" in formatted
    assert f"ValueError: no route for /signin/link/{REDACTED}/" in formatted
    assert f"stack at /signin/link/{REDACTED}/" in formatted


def test_a_record_whose_arguments_do_not_format_is_still_redacted() -> None:
    record = _record(f"%s %s /signin/link/{TOKEN}/", "only one")
    RedactSecrets().filter(record)
    assert TOKEN not in record.getMessage()


def test_every_production_handler_redacts_and_django_logs_through_them() -> None:
    config = production.LOGGING
    assert config["filters"]["redact_secrets"]["()"] == "portal.core.logs.RedactSecrets"
    for name, handler in config["handlers"].items():
        assert "redact_secrets" in handler.get("filters", []), name
    # Django's default handlers (mail_admins, runserver's own) carry no filter: Django's
    # loggers are given ours instead, or pass their records up to them.
    assert config["loggers"]["django"]["handlers"] == ["console"]
    assert config["loggers"]["django"]["propagate"] is False
    assert config["loggers"]["django.server"] == {"handlers": [], "level": "INFO",
                                                  "propagate": True}


def test_portal_serve_gives_gunicorn_the_redacting_logger() -> None:
    argv = gunicorn_argv("127.0.0.1:8000", 2)
    assert argv[argv.index("--logger-class") + 1] == "portal.core.serve_logging.RedactingLogger"
    assert argv[argv.index("--forwarded-allow-ips") + 1] == ""


LOG_AS_DJANGO_DOES = (
    "import logging; from django.test import Client; "
    "logging.getLogger('django.request').warning('Not Found: %s', '/signin/link/" + TOKEN + "/'); "
    "logging.getLogger('django.server').info('\"GET /signin/link/" + TOKEN + "/ HTTP/1.1\" 302'); "
    "Client().post('/signin/link/" + TOKEN + "/')"
)


def test_django_logs_in_production_mode_hold_no_link_secret() -> None:
    # A real process with the production settings and their logging configuration. The
    # POST is answered 405 by the link view, and django.request logs its path.
    result = run_portal("shell", "-c", LOG_AS_DJANGO_DOES, **PRODUCTION,
                        PORTAL_ALLOWED_HOSTS="testserver", DATABASE_URL="sqlite:///:memory:")
    assert result.returncode == 0, result.stderr
    assert "Method Not Allowed (POST): /signin/link/[redacted]/" in result.stderr
    assert "Not Found: /signin/link/[redacted]/" in result.stderr
    assert '"GET /signin/link/[redacted]/ HTTP/1.1" 302' in result.stderr
    assert TOKEN not in result.stderr + result.stdout
