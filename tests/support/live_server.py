"""The test live server, one request at a time when its threads share a SQLite connection.

The SQLite pass keeps its test database in memory. pytest-django's ``live_server`` then
hands the test's own connection to Django's threaded server, and every request thread
uses that one connection. Two requests at once (a waiting tab's poll beside a form's POST,
a phone beside a desktop) then interleave on one SQLite connection. One thread's
``BEGIN IMMEDIATE`` meets the other's open transaction, and SQLite answers "cannot start
a transaction within a transaction": a 500 that no real deployment can produce, since each
of its processes and threads has a connection of its own. CI met it once, in the approval
browser suite.

``SharedConnectionServer`` is Django's threaded server that, when it is given shared
connections, runs the application for one request at a time. The whole request, body
included, runs under one lock, and keep-alive connections still wait in threads of their
own. With PostgreSQL nothing is shared, and nothing changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.core.servers.basehttp import ThreadedWSGIServer
from django.test import testcases

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SharedConnectionServer(ThreadedWSGIServer):
    """Threaded, but with a shared connection, one request in the application at a time."""

    def set_app(self, application: WSGIApp) -> None:
        if not getattr(self, "connections_override", None):
            super().set_app(application)
            return
        lock = threading.Lock()

        def one_at_a_time(environ: dict[str, Any], start_response: Callable[..., Any]
                          ) -> Iterable[bytes]:
            with lock:
                body = application(environ, start_response)
                try:
                    return [b"".join(body)]
                finally:
                    close = getattr(body, "close", None)
                    if close is not None:
                        close()  # request_finished: the connection is handed back here

        super().set_app(one_at_a_time)


def install() -> None:
    """Make every live server of the session use ``SharedConnectionServer``."""
    testcases.LiveServerThread.server_class = SharedConnectionServer
