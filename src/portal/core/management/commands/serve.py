"""``portal serve``: the production web server (gunicorn) with production settings."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


def gunicorn_argv(bind: str, workers: int) -> list[str]:
    """Return gunicorn's command line for ``portal serve``."""
    return ["gunicorn", "portal.config.wsgi:application", "--bind", bind,
            "--workers", str(workers), "--access-logfile", "-",
            # Access and error lines pass through the same redaction as Django's logs:
            # a request line holds the secret of a sign-in link.
            "--logger-class", "portal.core.serve_logging.RedactingLogger",
            # gunicorn trusts no peer's forwarding headers: the portal alone decides which
            # proxies to believe (FORWARDED_ALLOW_IPS, in portal.core.http), for the client
            # address and the scheme alike, so the rule has one home.
            "--forwarded-allow-ips", ""]


class Command(BaseCommand):
    help = "Serve the portal with gunicorn (production). Run `portal worker` beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        # Defaults come from the validated environment (PORTAL_BIND, WEB_CONCURRENCY), so a
        # bad value stops `portal` with one line naming it rather than a traceback here.
        parser.add_argument("--bind", default=settings.CONFIG.bind)
        parser.add_argument("--workers", type=int, default=settings.CONFIG.web_concurrency)

    def handle(self, *args: Any, bind: str, workers: int, **options: Any) -> None:
        from gunicorn.app.wsgiapp import WSGIApplication

        sys.argv = gunicorn_argv(bind, workers)
        WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()
