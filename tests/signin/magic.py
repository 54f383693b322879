"""Helpers for the magic-link tests: ask for a link, run the worker, read the email."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from portal.mail.worker import deliver_due
from tests.support.smtp import Received, SMTPServer

LINK = re.compile(r"https?://[^\s\"<>]+/signin/link/([A-Za-z0-9_-]+)/")
# The code's stable marker in the plain-text part: a line of its own, "Code: 123 456".
CODE = re.compile(r"^Code: (\d{3}) (\d{3})\r?$", re.MULTILINE)


@dataclass
class Link:
    url: str
    token: str
    email: Received

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


def code_of(link: Link) -> str:
    """Return the six digits of the email's one-time code."""
    match = CODE.search(text_of(link.email))
    assert match, "no code in the email"
    return match.group(1) + match.group(2)


def request_as(client: Client, path: str = "/signin/", method: str = "get",
               ip: str = "127.0.0.1", **data: str) -> HttpRequest:
    """Build the request ``client`` would send, session and cookies included, for a flow.

    Flow-level tests call the journey's functions directly with this; ``settle`` then
    hands what the flow changed (session, cookies) back to the client, as a response would.
    """
    factory = RequestFactory()
    request = getattr(factory, method)(path, data, REMOTE_ADDR=ip)
    request.COOKIES.update({name: morsel.value for name, morsel in client.cookies.items()})
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    request.user = get_user(request)
    return request


def settle(client: Client, request: HttpRequest) -> None:
    """Save ``request``'s session and give ``client`` its (possibly new) session cookie."""
    if not request.session.is_empty():
        request.session.save()
        client.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key or ""


def ask(client: Client, email: str, next_url: str = "", **extra: str) -> object:
    data = {"email": email}
    if next_url:
        data["next"] = next_url
    return client.post("/signin/", data, **extra)


def text_of(received: Received) -> str:
    part = received.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(received: Received) -> str:
    part = received.message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def deliver_and_read(smtp: SMTPServer, count: int = 1) -> list[Link]:
    """Run the worker once and return the sign-in links that arrived.

    Other mail that arrived alongside (a notice of a sign-in from a new browser) is left
    out: it is not a sign-in email.
    """
    deliver_due()
    deadline = time.monotonic() + 5
    while True:
        links = []
        for received in smtp.messages:
            match = LINK.search(text_of(received))
            if match:
                links.append(Link(match.group(0), match.group(1), received))
        if len(links) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(links) >= count, f"expected {count} sign-in email(s), got {len(links)}"
    return links
