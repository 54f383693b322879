"""gunicorn's logger for ``portal serve``: its access and error logs, with secrets redacted."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from portal.core.logs import RedactSecrets

_REDACT = RedactSecrets()


class RedactingLogger(Logger):
    """gunicorn's own logger, whose access and error lines pass through ``RedactSecrets``.

    The access log's request line (``GET /signin/link/<token>/``) and the error log's
    "Error handling request <path>" would otherwise hold live sign-in secrets.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # One filter instance: setup runs again on every reopen, and addFilter skips a
        # filter already present.
        self.error_log.addFilter(_REDACT)
        self.access_log.addFilter(_REDACT)
