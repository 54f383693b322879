"""PostgreSQL with the health check only for a connection that sat idle (decision 0036).

Connections are kept between requests (``CONN_MAX_AGE``), and Django's health check
(``CONN_HEALTH_CHECKS``) makes sure a kept connection still works before a request uses
it, so a PostgreSQL restart in the night does not fail the first page of every worker in
the morning. Django pays for that with a ``SELECT 1`` round trip at the start of *every*
request, which under load was 6 to 8% of a worker's time on every page (profiled, issue
14), to re-check a connection that answered a query a few milliseconds earlier.

Here a connection that did its work less than ``CHECK_AFTER_IDLE_SECONDS`` ago is taken as
it is; an idler one is checked, as Django does. A connection that breaks while busy fails
the query that meets the break, like a query in flight during a restart would; Django then
sees the error, checks the connection when that request ends and closes it, and the next
request opens a new one.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base

# Under load every connection is used many times a second; a quiet one gets the check.
CHECK_AFTER_IDLE_SECONDS = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's wrapper; ``close_if_health_check_failed`` skips a connection just used."""

    #: ``time.monotonic()`` when the open connection last gave out a cursor; None when new.
    last_used: float | None = None
    health_check_done: bool  # Django's, set per request (not in the type stubs)

    def close_if_health_check_failed(self) -> None:
        if (self.connection is not None and self.settings_dict["CONN_HEALTH_CHECKS"]
                and not self.health_check_done and self.last_used is not None
                and time.monotonic() - self.last_used < CHECK_AFTER_IDLE_SECONDS):
            self.health_check_done = True  # it answered just now; check it next time it idles
            return
        super().close_if_health_check_failed()

    def create_cursor(self, name: Any = None) -> Any:
        cursor = super().create_cursor(name)
        self.last_used = time.monotonic()
        return cursor

    def connect(self) -> None:
        self.last_used = None
        super().connect()

    def close(self) -> None:
        self.last_used = None
        super().close()
