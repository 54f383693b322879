"""``portal worker``: deliver the outbox until told to stop.

Run one or more beside the web processes, on any machines that reach the database and
the relay. SIGTERM or Ctrl-C lets the message in hand finish, gives the rest of its batch
back (due again at once for any worker), then exits 0; a second signal exits at once (the
messages claimed are then retried by another worker after their lease).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.mail.worker import Worker, deliver_due

log = logging.getLogger("portal.mail.worker")


class Command(BaseCommand):
    help = "Deliver queued email: claim, render, send over SMTP, record every attempt."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true",
                            help="Deliver what is due now, then exit.")
        parser.add_argument("--poll-interval", type=float, default=1.0, metavar="SECONDS",
                            help="Longest wait before looking for due mail again (default 1). "
                                 "On PostgreSQL new mail also wakes the worker at once.")

    def handle(self, *args: Any, once: bool, poll_interval: float, **options: Any) -> None:
        if not 0.05 <= poll_interval <= 60:
            raise CommandError("--poll-interval must be between 0.05 and 60 seconds.")
        if once:
            handled = deliver_due()
            self.stdout.write(f"Handled {handled} message{'s' if handled != 1 else ''}.")
            return
        stop = threading.Event()
        requested = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # Only flag here: the loop thread sees ``stop`` between messages. Restoring
            # the default handlers makes a second signal end the process at once.
            requested.set()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        worker = Worker(poll_interval=poll_interval)
        # The loop runs in a thread so the main thread only waits for signals and never
        # holds a lock a signal handler might need.
        loop = threading.Thread(target=worker.run, args=(stop,), name="outbox-worker")
        loop.start()
        while loop.is_alive():
            loop.join(0.2)
            if requested.is_set() and not stop.is_set():
                log.info("stopping after the current message")
                stop.set()
        if not stop.is_set():
            raise CommandError("The delivery loop ended unexpectedly; see the log above.")
