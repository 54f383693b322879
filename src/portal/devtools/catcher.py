"""The development mail catcher: an SMTP server that keeps every message in a Maildir.

``make run`` starts it on 127.0.0.1:1025 and points the portal's SMTP settings at it, so
the real worker and the real SMTP code path run on a laptop, and the caught mail is
readable at /dev/mail/. It accepts any sender and recipient and relays nothing.
"""

from __future__ import annotations

import logging
import mailbox
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger("portal.devtools.catcher")

# Far above any message the portal writes; stops a stray client filling the disk.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def open_maildir(folder: Path) -> mailbox.Maildir:
    """Open the Maildir at ``folder``, creating it (and its tmp/new/cur) if missing."""
    # mailbox only creates the subfolders when the folder itself is new; ``make run``
    # may have created an empty var/mail already.
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(folder, factory=None, create=False)


class MaildirHandler:
    """aiosmtpd handler storing each message's bytes exactly as received."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = open_maildir(maildir)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        with self._lock:
            key = self.maildir.add(bytes(raw))
        log.info("caught a message for %s (%s)", ", ".join(envelope.rcpt_tos), key)
        return "250 2.0.0 OK: caught (development catcher; nothing is relayed)"


def start(maildir: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the catcher in a background thread and return its controller."""
    # aiosmtpd logs every SMTP command at INFO; one line per caught message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(MaildirHandler(maildir), hostname=host, port=port,
                            data_size_limit=MAX_MESSAGE_BYTES)
    controller.start()
    return controller
