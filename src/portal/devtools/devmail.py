"""Read the development catcher's Maildir for the dev mail pages."""

from __future__ import annotations

import email.policy
import mailbox
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

from portal.devtools.catcher import open_maildir

# Maildir keys the catcher writes: "<seconds>.<unique>.<host>". Anything else (a path,
# "..") is refused before it gets near the file system.
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
LIST_LIMIT = 200
SHOWN_HEADERS = ("From", "To", "Date", "Message-ID", "Auto-Submitted", "DKIM-Signature")


@dataclass(frozen=True)
class Summary:
    key: str
    to: str
    subject: str
    received_at: datetime


@dataclass(frozen=True)
class Caught:
    key: str
    subject: str
    headers: list[tuple[str, str]]
    text: str
    html: str
    raw: str
    received_at: datetime


def _box(folder: str) -> mailbox.Maildir:
    return open_maildir(Path(folder))


# Python's mailbox names files "<seconds>.M<microseconds>P<pid>Q<counter>.<host>".
KEY_PARTS = re.compile(r"(\d+)\.M(\d+)P\d+Q(\d+)\.")


def _order_of(key: str) -> tuple[int, int, int]:
    """Return when the catcher stored ``key``, as a sortable tuple (microsecond precision)."""
    match = KEY_PARTS.match(key)
    if match is None:
        return (0, 0, 0)
    seconds, micros, counter = (int(part) for part in match.groups())
    return (seconds, micros, counter)


def _time_of(key: str) -> float:
    seconds, micros, _ = _order_of(key)
    return seconds + micros / 1e6


def inbox(folder: str, limit: int = LIST_LIMIT) -> list[Summary]:
    """Return the newest caught messages first (headers only; bodies are not read)."""
    box = _box(folder)
    keys = sorted(box.keys(), key=lambda k: (_order_of(k), k), reverse=True)[:limit]
    result = []
    for key in keys:
        try:
            with box.get_file(key) as handle:
                head = handle.read(64 * 1024)  # the headers; bodies are not needed here
            headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
        except (KeyError, OSError):
            continue  # deleted between listing and reading
        result.append(Summary(key=key, to=str(headers.get("To", "")),
                              subject=str(headers.get("Subject", "")),
                              received_at=datetime.fromtimestamp(_time_of(key), UTC)))
    return result


def read(folder: str, key: str) -> Caught | None:
    """Return one caught message with its text and HTML parts, or None if there is none."""
    if not KEY.fullmatch(key):
        return None
    box = _box(folder)
    try:
        raw = box.get_bytes(key)
    except (KeyError, OSError):
        return None
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    return Caught(
        key=key,
        subject=str(message.get("Subject", "")),
        headers=[(name, str(message[name])) for name in SHOWN_HEADERS if name in message],
        text=text_part.get_content() if isinstance(text_part, EmailMessage) else "",
        html=html_part.get_content() if isinstance(html_part, EmailMessage) else "",
        raw=raw.decode("utf-8", "replace"),
        received_at=datetime.fromtimestamp(_time_of(key), UTC),
    )
