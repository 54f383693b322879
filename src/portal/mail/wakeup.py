"""Let an idle worker sleep until mail is queued: LISTEN/NOTIFY on PostgreSQL, a poll elsewhere.

``enqueue`` issues ``NOTIFY portal_outbox`` inside the caller's transaction; PostgreSQL
delivers it on commit, so a listening worker starts on new mail at once. The poll interval
remains the safety net (a missed notification, retries falling due, SQLite).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections

from portal.mail.outbox import NOTIFY_CHANNEL

log = logging.getLogger("portal.mail.worker")

# How often a blocked wait looks at the stop flag: bounds how long SIGTERM waits.
STOP_CHECK_SECONDS = 0.25


class Wakeup:
    """A dedicated listening connection (PostgreSQL) or a plain timed wait."""

    def __init__(self) -> None:
        self._wrapper: Any = None

    def start(self) -> None:
        """Begin listening before the first look for due mail, so no commit is missed.

        Mail committed before ``LISTEN`` is found by the look that follows; mail committed
        after it wakes the wait.
        """
        self._listening()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Block until notified, ``stop`` is set, or ``timeout`` passes; True if notified."""
        deadline = time.monotonic() + timeout
        raw = self._listening()
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            slice_ = min(remaining, STOP_CHECK_SECONDS)
            if raw is None:
                stop.wait(slice_)
                continue
            try:
                for _ in raw.notifies(timeout=slice_, stop_after=1):
                    return True
            except Exception:  # the database went away: poll until it is back
                log.warning("lost the LISTEN connection; polling instead", exc_info=True)
                self.close()
                raw = None
        return False

    def close(self) -> None:
        wrapper, self._wrapper = self._wrapper, None
        if wrapper is not None:
            try:
                wrapper.close()
            except Exception:  # closing a broken connection may fail too; it is gone anyway
                log.debug("closing the LISTEN connection failed", exc_info=True)

    def _listening(self) -> Any:
        if connection.vendor != "postgresql":
            return None
        if self._wrapper is None:
            try:
                # A separate connection: the worker's own one runs transactions, and a
                # LISTEN must stay idle outside any transaction to receive notifications.
                wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
                wrapper.ensure_connection()
                wrapper.connection.autocommit = True
                wrapper.connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self._wrapper = wrapper
            except Exception:
                log.warning("cannot LISTEN for new mail; polling instead", exc_info=True)
                return None
        return self._wrapper.connection
