"""Helpers for the magic-link tests: ask for a link, run the worker, read the email."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.test import Client

from portal.mail.worker import deliver_due
from tests.support.smtp import Received, SMTPServer

LINK = re.compile(r"https?://[^\s\"<>]+/signin/link/([A-Za-z0-9_-]+)/")


@dataclass
class Link:
    url: str
    token: str
    email: Received

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


def ask(client: Client, email: str, next_url: str = "", **extra: str) -> object:
    data = {"email": email}
    if next_url:
        data["next"] = next_url
    return client.post("/signin/", data, **extra)  # type: ignore[arg-type]


def text_of(received: Received) -> str:
    part = received.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(received: Received) -> str:
    part = received.message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def deliver_and_read(smtp: SMTPServer, count: int = 1) -> list[Link]:
    """Run the worker once and return the sign-in links that arrived."""
    deliver_due()
    links = []
    for received in smtp.wait_for(count, timeout=5):
        match = LINK.search(text_of(received))
        assert match, "no sign-in link in the email"
        links.append(Link(match.group(0), match.group(1), received))
    return links
