"""A real SMTP server for tests: aiosmtpd on a free loopback port, collecting what it receives."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


# Longest a held command waits for release(): a test that forgets to release cannot hang.
HOLD_LIMIT_SECONDS = 30.0


@dataclass
class CollectingHandler:
    """Stores every message; can be told to answer with an error code instead."""

    received: list[Received] = field(default_factory=list)
    reply_code: str | None = None  # e.g. "451 4.3.0 try later" or "550 5.1.1 no such user"
    lock: threading.Lock = field(default_factory=threading.Lock)

    closing: bool = False  # set by SMTPServer.stop(drain=…): answer 421, store nothing
    delay: float = 0.0  # seconds to wait before answering DATA (a slow relay)
    # Seconds to wait before answering MAIL or RCPT (a relay slow at every step).
    delays: dict[str, float] = field(default_factory=dict)
    # Set by SMTPServer.hold(): the command ("MAIL" or "DATA") that waits for release().
    hold_at: str | None = None
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    abandoned: threading.Event = field(default_factory=threading.Event)  # sender gone while held

    async def _pause(self, command: str) -> None:
        if self.delays.get(command):
            await asyncio.sleep(self.delays[command])
        if self.hold_at != command:
            return
        self.held.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_LIMIT_SECONDS
        try:
            while not self.released.is_set() and loop.time() < deadline:
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            # The client went away and aiosmtpd cancelled this wait: nothing is stored, as a
            # relay drops a message whose sender vanished before it was accepted.
            self.abandoned.set()
            raise

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        await self._pause("MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        await self._pause("RCPT")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        await self._pause("DATA")
        if self.closing:
            return "421 4.3.2 Service shutting down"
        if self.reply_code:
            return self.reply_code
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content)))
        return "250 2.0.0 OK queued"


class SMTPServer:
    """One aiosmtpd server; ``stop()``/``start()`` simulate an outage on the same port."""

    def __init__(self, **controller_options: Any) -> None:
        self.handler = CollectingHandler()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller: Controller | None = None
        # Extra aiosmtpd Controller options, e.g. tls_context, authenticator, auth_required.
        self.controller_options = controller_options

    def start(self) -> None:
        self.handler.closing = False
        self.controller = Controller(self.handler, hostname=self.host, port=self.port,
                                     **self.controller_options)
        self.controller.start()

    def stop(self, drain: float = 0.0) -> None:
        """Stop listening. With ``drain``, first answer 421 to new messages for that long.

        An abrupt stop can drop the ``250`` of a message already stored, and the client
        then rightly sends it again; draining makes an outage in a test deterministic.
        """
        if drain and self.controller is not None:
            self.handler.closing = True
            time.sleep(drain)
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
        self.handler.reply_code = None
        self.handler.delay = 0.0
        self.handler.delays = {}
        self.release()

    def hold(self, command: str) -> None:
        """Make the next ``command`` ("MAIL", "RCPT" or "DATA") wait until ``release()``.

        Held at DATA, the message has arrived in full but is not stored or answered yet.
        """
        self.handler.held.clear()
        self.handler.released.clear()
        self.handler.abandoned.clear()
        self.handler.hold_at = command

    def wait_held(self, timeout: float = 20.0) -> None:
        """Wait (bounded) until a client is waiting at the held command."""
        if not self.handler.held.wait(timeout):
            raise AssertionError(f"no client reached {self.handler.hold_at} within {timeout} s")

    def release(self) -> None:
        """Let a held command go on, and hold nothing from now on."""
        self.handler.hold_at = None
        self.handler.released.set()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Wait (bounded) until at least ``count`` messages arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")
