"""Keep secrets out of every log: secret-bearing paths are redacted before a line is written.

A sign-in link's path holds its secret (``/signin/link/<token>/``), and so do an
organization admin's invitation (``/organization/invitation/<token>/``) and an operator's
passkey enrolment link (``/passkeys/enrol/<token>/``). Web servers log request
lines and Django logs the paths of 4xx answers, so a log reader could sign in as whoever
had just been sent a link. ``RedactSecrets`` is a logging filter on every handler of the
portal's logs (settings.LOGGING) and on gunicorn's access and error logs
(``portal.core.serve_logging``); the nginx configuration in the README does the same with
a ``map``.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# Everything after /signin/link/ up to the next slash, query, quote or space.
LINK_SECRET = re.compile(r"(/signin/link/|/organization/invitation/|/passkeys/enrol/)"
                         r"[^/?#\s\"']+")


def redact(text: str) -> str:
    """Return ``text`` with the secret of every sign-in link path replaced."""
    return LINK_SECRET.sub(rf"\g<1>{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Rewrite each record's message, traceback and stack with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format would be printed raw by logging's error handler
            message = f"{record.msg} (its arguments could not be formatted)"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
