"""``portal serve``: the production web server (gunicorn) with production settings."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the portal with gunicorn (production). Run `portal worker` beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        # Defaults come from the validated environment (PORTAL_BIND, WEB_CONCURRENCY), so a
        # bad value stops `portal` with one line naming it rather than a traceback here.
        parser.add_argument("--bind", default=settings.CONFIG.bind)
        parser.add_argument("--workers", type=int, default=settings.CONFIG.web_concurrency)

    def handle(self, *args: Any, bind: str, workers: int, **options: Any) -> None:
        from gunicorn.app.wsgiapp import WSGIApplication

        # Only the proxies named in FORWARDED_ALLOW_IPS may set the client address and scheme;
        # anyone else could claim any IP and slip past the per-IP rate limits.
        sys.argv = ["gunicorn", "portal.config.wsgi:application", "--bind", bind,
                    "--workers", str(workers), "--access-logfile", "-",
                    "--forwarded-allow-ips", settings.CONFIG.forwarded_allow_ips]
        WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()
