"""``portal serve``: the production web server (gunicorn) with production settings."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the portal with gunicorn (production). Run `portal worker` beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("PORTAL_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY",
                                                                              "2")))

    def handle(self, *args: Any, bind: str, workers: int, **options: Any) -> None:
        from gunicorn.app.wsgiapp import WSGIApplication

        argv = ["gunicorn", "portal.config.wsgi:application", "--bind", bind,
                "--workers", str(workers), "--access-logfile", "-", "--forwarded-allow-ips",
                os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")]
        import sys

        sys.argv = argv
        WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()
