"""``portal mailcatcher``: the development SMTP catcher (see ``portal.devtools.catcher``)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.devtools import catcher


class Command(BaseCommand):
    help = "Development only: accept SMTP on a loopback port and keep every message in a Maildir."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)
        parser.add_argument("--maildir", default=str(Path(settings.VAR_DIR) / "mail"))

    def handle(self, *args: Any, host: str, port: int, maildir: str, **options: Any) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            # It accepts mail from anyone without a login; on a shared network that is an
            # open inbox for strangers' mail and a disk-filling target.
            raise CommandError("The catcher listens on loopback only (127.0.0.1 or ::1).")
        folder = Path(maildir).resolve()
        # Signals are taken synchronously with sigwait; blocked before the server thread
        # starts, so that thread inherits the mask and only the main thread receives them.
        stop_signals = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            controller = catcher.start(folder, host=host, port=port)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
        self.stdout.write(f"Catching mail on {host}:{port} into {folder}")
        self.stdout.flush()
        try:
            signal.sigwait(stop_signals)
        finally:
            controller.stop()
