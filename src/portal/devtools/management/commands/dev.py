"""``portal dev``: what ``make run`` starts. Migrate, load demo data, run everything locally."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from portal.devtools.devserver import Child, Supervisor, child_environment, portal_command


class Command(BaseCommand):
    help = ("Development only: migrate, load demo data, then run the mail catcher, a "
            "worker and the web server until Ctrl-C.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000",
                            help="Address of the web server (default 127.0.0.1:8000).")
        parser.add_argument("--smtp-port", type=int, default=1025,
                            help="Loopback port of the mail catcher (default 1025).")
        parser.add_argument("--noreload", action="store_true",
                            help="Do not restart the web server when code changes.")

    def handle(self, *args: Any, addr: str, smtp_port: int, noreload: bool,
               **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("portal dev is for development only: set PORTAL_DEBUG=true.")
        mail_dir = (Path(settings.VAR_DIR) / "mail").resolve()
        mail_dir.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=1)
        call_command("demo")
        runserver = ["runserver", addr, *(["--noreload"] if noreload else [])]
        host, _, port = addr.rpartition(":")
        # Emails and pages say localhost rather than 127.0.0.1: passkeys need a host name
        # (browsers refuse an IP address as the WebAuthn relying party id).
        base = f"http://localhost:{port}" if host in ("127.0.0.1", "localhost") else f"http://{addr}"
        supervisor = Supervisor(
            [Child("mail catcher", portal_command("mailcatcher", "--port", str(smtp_port),
                                                  "--maildir", str(mail_dir))),
             Child("worker", portal_command("worker")),
             Child("web server", portal_command(*runserver))],
            env=child_environment(os.environ, smtp_port=smtp_port, mail_dir=str(mail_dir),
                                  base_url=base))
        stop: list[int] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.append(signum)

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        supervisor.start()
        self.stdout.write(
            f"\n  Sign in:      {base}{reverse('signin:start')}\n"
            f"  Caught mail:  {base}{reverse('devmail:inbox')}\n"
            f"  Staff admin:  {base}{reverse('admin:index')}\n"
            "  Every email goes to the local catcher; nothing leaves this machine.\n"
            "  Press Ctrl-C to stop.\n")
        self.stdout.flush()
        code = supervisor.watch(lambda: bool(stop))
        if code:
            raise SystemExit(code)
